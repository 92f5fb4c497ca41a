/*
 * web-assets — see web-assets.h. The assembler copies each file in
 * (.incbin, paths from the top of the source tree, where make runs);
 * the Makefile rebuilds this file when one of them changes.
 */
#include "web-assets.h"

#include <string.h>

#define WEB_EMBED(sym, file)						\
	__asm__(".pushsection .rodata\n"				\
	    ".balign 16\n"						\
	    #sym "_start:\n"						\
	    ".incbin \"" file "\"\n"					\
	    #sym "_end:\n"						\
	    ".byte 0\n"							\
	    ".popsection\n");						\
	extern const char sym##_start[], sym##_end[]

WEB_EMBED(web_index_html, "gateway/www/index.html");
WEB_EMBED(web_app_css, "gateway/www/app.css");
WEB_EMBED(web_app_js, "gateway/www/app.js");
WEB_EMBED(web_favicon_svg, "gateway/www/favicon.svg");

const struct web_asset *
web_asset_find(const char *path)
{
	static struct web_asset assets[4];
	static const char *const paths[] = { "/index.html", "/app.css",
	    "/app.js", "/favicon.svg" };

	if (assets[0].path == NULL) {
		assets[0] = (struct web_asset){ paths[0],
		    "text/html; charset=utf-8", web_index_html_start,
		    (size_t)(web_index_html_end - web_index_html_start) };
		assets[1] = (struct web_asset){ paths[1],
		    "text/css; charset=utf-8", web_app_css_start,
		    (size_t)(web_app_css_end - web_app_css_start) };
		assets[2] = (struct web_asset){ paths[2],
		    "text/javascript; charset=utf-8", web_app_js_start,
		    (size_t)(web_app_js_end - web_app_js_start) };
		assets[3] = (struct web_asset){ paths[3], "image/svg+xml",
		    web_favicon_svg_start,
		    (size_t)(web_favicon_svg_end - web_favicon_svg_start) };
	}
	if (strcmp(path, "/") == 0)
		path = "/index.html";
	for (size_t i = 0; i < sizeof(assets) / sizeof(assets[0]); i++) {
		if (strcmp(assets[i].path, path) == 0)
			return &assets[i];
	}
	return NULL;
}
