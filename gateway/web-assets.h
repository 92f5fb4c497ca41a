/*
 * web-assets — the web page's static files (gateway/www/: index.html,
 * app.css, app.js, favicon.svg), built into popgated so that it needs no files at run time
 * and the page loads nothing from elsewhere.
 */
#ifndef POPGATE_GATEWAY_WEB_ASSETS_H
#define POPGATE_GATEWAY_WEB_ASSETS_H

#include <stddef.h>

struct web_asset {
	const char *path;	/* "/app.js" */
	const char *type;	/* Content-Type */
	const char *data;
	size_t size;
};

/* The file served at path ("/" is index.html), or NULL. */
const struct web_asset *web_asset_find(const char *path);

#endif
