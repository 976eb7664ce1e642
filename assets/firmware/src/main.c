/* stm32ota demo application for the STM32F407 (Discovery board pin-out).
 *
 * It does what a real application does after an OTA update: prints its version on USART2 (PA2/PA3,
 * 115200 8N1 from the 16 MHz HSI), blinks the Discovery LEDs on PD12..PD15 with SysTick, and answers one
 * command on the serial line: 'r' requests a reset (back into the bootloader).  Versions differ in the
 * blink pattern and the banner, so a technician can see which image runs.
 */
#include <stdint.h>

#include "app_info.h"
#include "stm32f407.h"

#ifndef APP_VERSION_MAJOR
#define APP_VERSION_MAJOR 1
#endif
#ifndef APP_VERSION_MINOR
#define APP_VERSION_MINOR 0
#endif
#ifndef APP_VERSION_REVISION
#define APP_VERSION_REVISION 0
#endif
#ifndef APP_NAME
#define APP_NAME "stm32ota-demo"
#endif

#define STR2(x) #x
#define STR(x) STR2(x)
#define APP_VERSION_TEXT STR(APP_VERSION_MAJOR) "." STR(APP_VERSION_MINOR) "." STR(APP_VERSION_REVISION)

#define BAUD 115200u
#define TICK_HZ 1000u
#define LED_PINS (0xFu << 12)

__attribute__((section(".app_info"), used)) const struct app_info g_app_info = {
    .magic = APP_INFO_MAGIC,
    .major = APP_VERSION_MAJOR,
    .minor = APP_VERSION_MINOR,
    .revision = APP_VERSION_REVISION,
    .dev_id = 0x413,
    .board_id = 0,
    .name = APP_NAME,
    .build = "v" APP_VERSION_TEXT,
};

static volatile uint32_t g_ticks;
static uint32_t g_step_ticks = TICK_HZ / 8u; /* initialised data: exercises the .data copy (LMA != VMA) */

/* Blink patterns: one bit per 125 ms step, one pattern per LED (green, orange, red, blue). */
#if APP_VERSION_MINOR == 0
static const uint8_t k_patterns[4] = {0xF0, 0x00, 0x00, 0x00}; /* 1.0.x: slow green */
#else
static const uint8_t k_patterns[4] = {0xAA, 0x00, 0x00, 0x55}; /* 1.1+: fast green/blue alternation */
#endif

void SysTick_Handler(void)
{
    ++g_ticks;
}

static void uart_init(void)
{
    RCC_AHB1ENR |= RCC_AHB1ENR_GPIOAEN;
    RCC_APB1ENR |= RCC_APB1ENR_USART2EN;
    /* PA2, PA3: alternate function 7 */
    GPIO_MODER(GPIOA_BASE) = (GPIO_MODER(GPIOA_BASE) & ~(0xFu << 4)) | (0xAu << 4);
    GPIO_AFRL(GPIOA_BASE) = (GPIO_AFRL(GPIOA_BASE) & ~(0xFFu << 8)) | (0x77u << 8);
    USART_BRR(USART2_BASE) = (HSI_HZ + BAUD / 2u) / BAUD;
    USART_CR1(USART2_BASE) = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE;
}

static void uart_putc(char c)
{
    while (!(USART_SR(USART2_BASE) & USART_SR_TXE)) {
    }
    USART_DR(USART2_BASE) = (uint32_t)(uint8_t)c;
}

static void uart_puts(const char *s)
{
    while (*s) {
        if (*s == '\n') {
            uart_putc('\r');
        }
        uart_putc(*s++);
    }
}

static void uart_put_hex(uint32_t value, int digits)
{
    static const char k_hex[] = "0123456789abcdef";
    for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4) {
        uart_putc(k_hex[(value >> shift) & 0xFu]);
    }
}

static int uart_getc(void)
{
    if (USART_SR(USART2_BASE) & USART_SR_RXNE) {
        return (int)(USART_DR(USART2_BASE) & 0xFFu);
    }
    return -1;
}

static void leds_init(void)
{
    RCC_AHB1ENR |= RCC_AHB1ENR_GPIODEN;
    GPIO_MODER(GPIOD_BASE) = (GPIO_MODER(GPIOD_BASE) & ~(0xFFu << 24)) | (0x55u << 24);
}

static void leds_show(uint32_t step)
{
    uint32_t on = 0;
    for (uint32_t led = 0; led < 4u; ++led) {
        if (k_patterns[led] & (1u << (step & 7u))) {
            on |= 1u << (12u + led);
        }
    }
    GPIO_BSRR(GPIOD_BASE) = on | ((LED_PINS & ~on) << 16);
}

#ifdef APP_WITH_ASSETS
void assets_selftest(void (*puts_fn)(const char *));
#endif

int main(void)
{
    SYST_RVR = HSI_HZ / TICK_HZ - 1u;
    SYST_CVR = 0;
    SYST_CSR = 7u; /* processor clock, interrupt, enable */
    uart_init();
    leds_init();

    uart_puts("\n" APP_NAME " " APP_VERSION_TEXT " running from the primary slot\n");
    uart_puts("chip dev_id 0x");
    uart_put_hex(DBGMCU_IDCODE & 0xFFFu, 3);
    uart_puts(", vector table at 0x");
    uart_put_hex(SCB_VTOR, 8);
    uart_puts("\npress 'r' to reset into the bootloader, 'f' to change the blink rate, 'v' for the version\n");
#ifdef APP_WITH_ASSETS
    assets_selftest(uart_puts);
#endif

    uint32_t step = 0;
    uint32_t next = 0;
    for (;;) {
        if ((int32_t)(g_ticks - next) >= 0) {
            leds_show(step++);
            next += g_step_ticks;
        }
        int c = uart_getc();
        if (c == 'r') {
            uart_puts("reset requested\n");
            SCB_AIRCR = SCB_AIRCR_SYSRESETREQ;
        } else if (c == 'f') {
            g_step_ticks = (g_step_ticks == TICK_HZ / 8u) ? TICK_HZ / 16u : TICK_HZ / 8u;
        } else if (c == 'v') {
            uart_puts(APP_VERSION_TEXT "\n");
        }
    }
}
