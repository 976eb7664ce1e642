/* The application descriptor: a fixed-format record right after the vector table (offset 0x188 of the
 * payload), so tools and the emulator can show which demo build is running without parsing ELF symbols. */
#ifndef APP_INFO_H
#define APP_INFO_H

#include <stdint.h>

#define APP_INFO_MAGIC 0x4F544133u /* "3ATO": stm32ota app info, little endian */

struct app_info {
    uint32_t magic;
    uint8_t major, minor;
    uint16_t revision;
    uint16_t dev_id;       /* the chip this build is for (DBGMCU DEV_ID) */
    uint16_t board_id;     /* 0 = any board */
    char name[24];
    char build[24];
};

extern const struct app_info g_app_info;

#endif
