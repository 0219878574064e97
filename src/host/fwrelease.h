/* fwrelease.h - released Batlab firmware: which version is the newest,
 * and its image, downloaded and checked (`batlab firmware check|update`,
 * dev:firmware_check / dev:firmware_update).
 *
 * The release list is the JSON of a GitHub releases API (an array of
 * releases, or one release as .../releases/latest gives it). A release's
 * version is its tag: "v8" or "8" (a ".N" after it is ignored: the device
 * reports a whole number). Drafts, prereleases and tags that are not a
 * version are skipped; the newest is the highest version. Its image is the
 * first asset whose name ends in ".bin".
 *
 * Everything here happens before a device is touched: a download that
 * fails or does not pass bl_firmware_check never reaches a bootloader.
 */
#ifndef BL_FWRELEASE_H
#define BL_FWRELEASE_H

#include <stddef.h>
#include <stdint.h>

/* Lexcelon's firmware project, where the seed and the GUI look. */
#define BL_FW_RELEASES_URL "https://api.github.com/repos/Lexcelon/batlab-firmware-measure/releases"
/* Overrides the URL above (a mirror, a test server). */
#define BL_FW_URL_ENV "BATLAB_FIRMWARE_URL"

struct bl_fw_release {
	int version;            /* from the tag */
	char tag[64];
	char asset[256];        /* the .bin asset's name */
	char url[2048];         /* and where to download it */
};

/* The release list's URL: `from` if given, else $BATLAB_FIRMWARE_URL if
 * set and not empty, else BL_FW_RELEASES_URL. */
const char *bl_fw_releases_url(const char *from);

/* The newest release in a release list's JSON text; `where` names it in
 * messages. BL_ERR_ARG with err set for text that is not JSON or not a
 * release list, BL_ERR_NOTFOUND when no release has a version tag or the
 * newest has no .bin asset. */
int bl_fw_release_parse(const char *json, size_t len, const char *where,
                        struct bl_fw_release *out, char *err, size_t errlen);

/* Fetch the release list at url and parse it (BL_ERR_IO: the fetch). */
int bl_fw_latest(const char *url, struct bl_fw_release *out, char *err, size_t errlen);

/* Download the release's image and check it as `firmware load` checks a
 * file. BL_OK: *image is malloc'd, *len bytes; else err names the URL. */
int bl_fw_download(const struct bl_fw_release *rel, uint8_t **image, size_t *len,
                   char *err, size_t errlen);

#endif
