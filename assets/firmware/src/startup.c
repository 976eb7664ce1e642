/* Vector table and reset handler for the stm32ota demo application (STM32F407, Cortex-M4).
 *
 * The image runs from the MCUboot primary slot: the 0x200-byte image header sits at 0x08020000 and this
 * vector table at 0x08020200 (see stm32f407-app.ld).  The bootloader jumps here with VTOR already pointing
 * at the table; we set it again so the application also works when started by a debugger.
 */
#include <stddef.h>
#include <stdint.h>

#include "stm32f407.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern const uint32_t g_vectors[];

int main(void);
void SysTick_Handler(void);

void *memcpy(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    while (n--) {
        *d++ = *s++;
    }
    return dst;
}

void *memset(void *dst, int value, size_t n)
{
    uint8_t *d = dst;
    while (n--) {
        *d++ = (uint8_t)value;
    }
    return dst;
}

void Reset_Handler(void)
{
    uint32_t *src = &_sidata;
    uint32_t *dst = &_sdata;
    while (dst < &_edata) {
        *dst++ = *src++;
    }
    for (dst = &_sbss; dst < &_ebss; ++dst) {
        *dst = 0;
    }
    SCB_VTOR = (uint32_t)g_vectors;
    (void)main();
    for (;;) {
    }
}

void Default_Handler(void)
{
    /* An unexpected interrupt or fault: reset, and let the bootloader decide (revert a test image). */
    SCB_AIRCR = SCB_AIRCR_SYSRESETREQ;
    for (;;) {
    }
}

void NMI_Handler(void) __attribute__((weak, alias("Default_Handler")));
void HardFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void MemManage_Handler(void) __attribute__((weak, alias("Default_Handler")));
void BusFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));

/* 16 system exceptions + the 82 STM32F407 interrupts, all but SysTick on the default handler. */
#define F407_IRQ_COUNT 82

__attribute__((section(".isr_vector"), used)) const uint32_t g_vectors[16 + F407_IRQ_COUNT] = {
    [0] = (uint32_t)&_estack,
    [1] = (uint32_t)Reset_Handler,
    [2] = (uint32_t)NMI_Handler,
    [3] = (uint32_t)HardFault_Handler,
    [4] = (uint32_t)MemManage_Handler,
    [5] = (uint32_t)BusFault_Handler,
    [6] = (uint32_t)UsageFault_Handler,
    [11] = (uint32_t)SVC_Handler,
    [14] = (uint32_t)PendSV_Handler,
    [15] = (uint32_t)SysTick_Handler,
    [16 ... 16 + F407_IRQ_COUNT - 1] = (uint32_t)Default_Handler,
};
