/* Helpers that break the protocol, for the failure table. Which way is
 * fixed when it is built (PTV_BAD_HELPER_MODE):
 *   "die"      reads the module's request, then exits without a result
 *   "hang"     reads the request, then says nothing, ever
 *   "garbage"  reads the request, then answers a frame that is no message
 * The module must deny each as an internal error under both failmodes. */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

static void read_request(void) {
  unsigned char header[4];
  if (read(0, header, 4) != 4) _exit(2);
  uint32_t n = header[0] | header[1] << 8 | header[2] << 16 |
               (uint32_t)header[3] << 24;
  char buffer[4096];
  while (n > 0) {
    ssize_t got = read(0, buffer, n < sizeof buffer ? n : sizeof buffer);
    if (got <= 0) _exit(2);
    n -= (uint32_t)got;
  }
}

int main(void) {
  read_request();
  if (strcmp(PTV_BAD_HELPER_MODE, "die") == 0) return 3;
  if (strcmp(PTV_BAD_HELPER_MODE, "hang") == 0) {
    for (;;) pause();
  }
  /* A frame of 9 bytes whose type (0x7f) no message has. */
  static const unsigned char frame[] = {9, 0, 0, 0, 0x7f, 'g', 'a', 'r',
                                        'b', 'a', 'g', 'e', '!'};
  if (write(0, frame, sizeof frame) < 0) return 4;  /* the socket is fd 0 */
  pause();
  return 0;
}
