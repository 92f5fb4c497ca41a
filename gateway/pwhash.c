/* pwhash — see pwhash.h. */
#include "pwhash.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "workq.h"
#include "xmalloc.h"

struct pwhash_job {
	struct workq_job wq;
	pwhash_done_fn *done;
	void *arg;
	char *password;
	size_t len;
	int ret;
	const char *error;	/* static text from password_hash */
	char hash[PASSWORD_ENCODED_MAX];
};

static enum workq_run_result
pwhash_run(struct workq_job *wq)
{
	struct pwhash_job *j = (struct pwhash_job *)wq;

	j->ret = password_hash(j->password, j->len, j->hash, &j->error);
	return WORKQ_DONE;
}

static void
pwhash_job_done(struct workq_job *wq)
{
	struct pwhash_job *j = (struct pwhash_job *)wq;

	if (wq->cancelled)
		j->done(j->arg, NULL, "the daemon is shutting down", true);
	else if (j->ret < 0)
		j->done(j->arg, NULL, j->error != NULL ? j->error :
		    "cannot hash the password", false);
	else
		j->done(j->arg, j->hash, NULL, false);
	secure_zero(j->password, j->len);
	free(j->password);
	secure_zero(j->hash, sizeof(j->hash));
	free(j);
}

void
pwhash_submit(struct workq *q, const char *password, size_t len,
    pwhash_done_fn *done, void *arg)
{
	struct pwhash_job *j = xcalloc(1, sizeof(*j));

	j->password = xmalloc(len + 1);
	memcpy(j->password, password, len);
	j->password[len] = '\0';
	j->len = len;
	j->done = done;
	j->arg = arg;
	j->ret = -1;
	j->wq.run = pwhash_run;
	j->wq.done = pwhash_job_done;
	j->wq.key = PWHASH_KEY;
	workq_submit(q, &j->wq);
}
