/* tools/pngbox.c - how much is drawn in boxes of a PNG screenshot.
 *
 *   pngbox [--min N] FILE.png NAME=X,Y,W,H ...
 *
 * Prints "NAME COUNT" per box: the pixels in the box that are not white
 * (any channel below 235). With --min N, a box with fewer than N such
 * pixels is also reported "NAME: blank (COUNT < N)" on stderr and the exit
 * status is 1. A box reaching past the image is clipped to it (an empty
 * box counts 0). Exit 2 for bad arguments or a PNG it cannot read.
 *
 * `make check-report` uses it on headless chromium's screenshot of a
 * report, with the plot boxes the page reported, to tell a plot that drew
 * its data from a blank one. It reads the PNGs chromium writes: 8 bits per
 * channel, grey, grey+alpha, RGB or RGBA, not interlaced (anything else is
 * refused, not guessed). zlib inflates; the rest is the PNG specification.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

struct image {
	uint32_t w, h;
	int channels;
	unsigned char *px;    /* h rows of w * channels bytes */
};

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static unsigned char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t cap = 0, n = 0, r;

	if (!f)
		return NULL;
	do {
		if (n == cap) {
			unsigned char *nb = realloc(buf, cap = cap ? cap * 2 : 1 << 16);
			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		r = fread(buf + n, 1, cap - n, f);
		n += r;
	} while (r > 0);
	fclose(f);
	*len = n;
	return buf;
}

static int paeth(int a, int b, int c)
{
	int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);

	if (pa <= pb && pa <= pc)
		return a;
	return pb <= pc ? b : c;
}

/* Undo the per-row filters of the inflated data into img->px. */
static int unfilter(struct image *img, const unsigned char *raw)
{
	size_t stride = (size_t)img->w * img->channels;
	int bpp = img->channels;

	for (uint32_t y = 0; y < img->h; y++) {
		const unsigned char *in = raw + y * (stride + 1);
		unsigned char *out = img->px + y * stride;
		const unsigned char *up = y ? out - stride : NULL;
		int type = in[0];

		in++;
		for (size_t x = 0; x < stride; x++) {
			int a = x >= (size_t)bpp ? out[x - bpp] : 0;
			int b = up ? up[x] : 0;
			int c = up && x >= (size_t)bpp ? up[x - bpp] : 0;
			int v;

			switch (type) {
			case 0: v = in[x]; break;
			case 1: v = in[x] + a; break;
			case 2: v = in[x] + b; break;
			case 3: v = in[x] + (a + b) / 2; break;
			case 4: v = in[x] + paeth(a, b, c); break;
			default: return -1;
			}
			out[x] = (unsigned char)v;
		}
	}
	return 0;
}

static const char *parse_header(struct image *img, const unsigned char *d)
{
	static const int channels[7] = {1, 0, 3, 0, 2, 0, 4};

	img->w = be32(d);
	img->h = be32(d + 4);
	if (d[8] != 8)
		return "only 8 bits per channel";
	if (d[9] > 6 || channels[d[9]] == 0)
		return "palette images are not read";
	if (d[12] != 0)
		return "interlaced images are not read";
	if (img->w == 0 || img->h == 0 || img->w > 20000 || img->h > 200000)
		return "unreasonable size";
	img->channels = channels[d[9]];
	return NULL;
}

/* load(path, img) -> NULL or what is wrong with the file. */
static const char *load(const char *path, struct image *img)
{
	static const unsigned char sig[8] = {137, 'P', 'N', 'G', '\r', '\n', 26, '\n'};
	size_t len, pos = 8, zlen = 0;
	unsigned char *file = read_all(path, &len), *z = NULL, *raw;
	const char *why = NULL;
	uLongf rawlen;

	if (!file)
		return "cannot read the file";
	if (len < 8 || memcmp(file, sig, 8) != 0) {
		free(file);
		return "not a PNG file";
	}
	img->w = 0;
	z = malloc(len);
	while (!why && z && pos + 12 <= len) {
		uint32_t n = be32(file + pos);
		const unsigned char *type = file + pos + 4, *data = file + pos + 8;

		if (n > len - pos - 12)
			why = "a chunk runs past the end of the file";
		else if (memcmp(type, "IHDR", 4) == 0 && n >= 13)
			why = parse_header(img, data);
		else if (memcmp(type, "IDAT", 4) == 0)
			memcpy(z + zlen, data, n), zlen += n;
		else if (memcmp(type, "IEND", 4) == 0)
			break;
		pos += 12 + (size_t)n;
	}
	free(file);
	if (!why && (!z || img->w == 0))
		why = z ? "no IHDR chunk" : "out of memory";
	if (why) {
		free(z);
		return why;
	}
	rawlen = (uLongf)img->h * ((uLongf)img->w * img->channels + 1);
	raw = malloc(rawlen);
	img->px = malloc((size_t)img->w * img->h * img->channels);
	if (!raw || !img->px)
		why = "out of memory";
	else if (uncompress(raw, &rawlen, z, zlen) != Z_OK ||
	         rawlen != (uLongf)img->h * ((uLongf)img->w * img->channels + 1))
		why = "the image data does not inflate to its size";
	else if (unfilter(img, raw) != 0)
		why = "unknown row filter";
	free(z);
	free(raw);
	return why;
}

/* Pixels in the box that are not white (transparent counts as white). */
static long count_box(const struct image *img, long x, long y, long w, long h)
{
	long n = 0;
	int ch = img->channels, colour = ch >= 3 ? 3 : 1;

	for (long j = y < 0 ? 0 : y; j < y + h && j < (long)img->h; j++) {
		for (long i = x < 0 ? 0 : x; i < x + w && i < (long)img->w; i++) {
			const unsigned char *p = img->px + ((size_t)j * img->w + i) * ch;
			int dark = 0;

			if ((ch == 2 || ch == 4) && p[ch - 1] < 16)
				continue;
			for (int c = 0; c < colour; c++)
				dark |= p[c] < 235;
			n += dark;
		}
	}
	return n;
}

int main(int argc, char **argv)
{
	struct image img = {0};
	long min = -1;
	int i = 1, rc = 0;
	const char *why;

	if (argc > 2 && strcmp(argv[1], "--min") == 0) {
		min = strtol(argv[2], NULL, 10);
		i = 3;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: pngbox [--min N] FILE.png NAME=X,Y,W,H ...\n");
		return 2;
	}
	if ((why = load(argv[i], &img)) != NULL) {
		fprintf(stderr, "pngbox: %s: %s\n", argv[i], why);
		free(img.px);
		return 2;
	}
	printf("%s %ux%u\n", argv[i], img.w, img.h);
	for (i++; i < argc; i++) {
		char name[256];
		long x, y, w, h, n;

		if (sscanf(argv[i], "%255[^=]=%ld,%ld,%ld,%ld", name, &x, &y, &w, &h) != 5) {
			fprintf(stderr, "pngbox: '%s' is not NAME=X,Y,W,H\n", argv[i]);
			rc = 2;
			break;
		}
		n = count_box(&img, x, y, w, h);
		printf("%s %ld\n", name, n);
		if (min >= 0 && n < min) {
			fprintf(stderr, "pngbox: %s: blank (%ld < %ld non-white pixels)\n", name, n, min);
			rc = 1;
		}
	}
	free(img.px);
	return rc;
}
