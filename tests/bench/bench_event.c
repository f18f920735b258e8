/*
 * bench_event.c - decoding speed of event_decode() on the inbound fixtures:
 * one decoder, each fixture decoded over and over for about a second, the
 * way a worker thread does. Prints ns per record, ns per event and events
 * per second for each fixture. Asserts nothing beyond EVENT_OK.
 *
 *   bench_event [fixtures-dir] [seconds-per-fixture]
 *
 * fixtures-dir defaults to tests/data/fixtures, then ../tests/data/fixtures
 * (run from the repo root or from a build directory).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event.h"

static const char *const names[] = {
	"acs-eg-text.json",        "acs-eg-batch.json",         "acs-ce-text.json",
	"acs-eg-button-reply.json", "acs-eg-list-reply.json",    "acs-eg-media-image.json",
	"acs-eg-reaction.json",     "acs-eg-status-delivered.json", "acs-eg-status-failed.json",
	"eg-subscription-validation.json", "meta-text.json",     "meta-button-reply.json",
	"meta-list-reply.json",     "meta-image-caption.json",   "meta-location.json",
	"meta-multi-messages.json", "meta-status-read.json",     "meta-status-failed.json",
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *slurp(const char *dir, const char *name, size_t *len)
{
	char path[1024];
	FILE *f;
	char *buf;
	long sz;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	sz = ftell(f);
	rewind(f);
	buf = malloc((size_t)sz + 1);
	if (!buf || fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	*len = (size_t)sz;
	return buf;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "tests/data/fixtures";
	double secs = argc > 2 ? atof(argv[2]) : 1.0;
	event_decoder_t *dec = event_decoder_new();
	unsigned long total_events = 0;
	double total_time = 0;
	size_t f;

	if (!dec)
		return 1;
	if (argc <= 1) {
		FILE *probe = fopen("tests/data/fixtures/acs-eg-text.json", "rb");

		if (probe)
			fclose(probe);
		else
			dir = "../tests/data/fixtures";
	}
	printf("%-34s %7s %6s %10s %10s %12s\n", "fixture", "bytes", "events", "ns/record", "ns/event", "events/s");
	for (f = 0; f < sizeof names / sizeof names[0]; f++) {
		size_t len, n = 0;
		char *buf = slurp(dir, names[f], &len);
		const struct wa_event *evs;
		unsigned long iters = 0, batch = 1000, i;
		double t0, t;

		if (!buf) {
			fprintf(stderr, "cannot read %s/%s\n", dir, names[f]);
			event_decoder_destroy(dec);
			return 1;
		}
		/* warm up: buffers reach their steady size */
		for (i = 0; i < 1000; i++) {
			if (event_decode(dec, buf, len, &evs, &n, NULL, 0) != EVENT_OK) {
				fprintf(stderr, "%s does not decode\n", names[f]);
				return 1;
			}
		}
		t0 = now_s();
		do {
			for (i = 0; i < batch; i++)
				event_decode(dec, buf, len, &evs, &n, NULL, 0);
			iters += batch;
			t = now_s() - t0;
		} while (t < secs);
		printf("%-34s %7zu %6zu %10.0f %10.0f %12.0f\n", names[f], len, n, t * 1e9 / (double)iters,
		       t * 1e9 / (double)(iters * n), (double)(iters * n) / t);
		total_events += iters * n;
		total_time += t;
		free(buf);
	}
	printf("all fixtures: %.0f ns/event, %.0f events/s\n", total_time * 1e9 / (double)total_events,
	       (double)total_events / total_time);
	event_decoder_destroy(dec);
	return 0;
}
