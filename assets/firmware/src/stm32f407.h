/* Minimal STM32F407 register definitions for the stm32ota demo application (no vendor headers needed). */
#ifndef STM32F407_H
#define STM32F407_H

#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(addr))

/* Reset and clock control */
#define RCC_BASE        0x40023800u
#define RCC_AHB1ENR     REG32(RCC_BASE + 0x30u)
#define RCC_APB1ENR     REG32(RCC_BASE + 0x40u)
#define RCC_AHB1ENR_GPIOAEN (1u << 0)
#define RCC_AHB1ENR_GPIODEN (1u << 3)
#define RCC_APB1ENR_USART2EN (1u << 17)

/* GPIO */
#define GPIOA_BASE      0x40020000u
#define GPIOD_BASE      0x40020C00u
#define GPIO_MODER(b)   REG32((b) + 0x00u)
#define GPIO_OSPEEDR(b) REG32((b) + 0x08u)
#define GPIO_ODR(b)     REG32((b) + 0x14u)
#define GPIO_BSRR(b)    REG32((b) + 0x18u)
#define GPIO_AFRL(b)    REG32((b) + 0x20u)

/* USART2 on PA2 (TX) / PA3 (RX), AF7 */
#define USART2_BASE     0x40004400u
#define USART_SR(b)     REG32((b) + 0x00u)
#define USART_DR(b)     REG32((b) + 0x04u)
#define USART_BRR(b)    REG32((b) + 0x08u)
#define USART_CR1(b)    REG32((b) + 0x0Cu)
#define USART_SR_TXE    (1u << 7)
#define USART_SR_RXNE   (1u << 5)
#define USART_CR1_UE    (1u << 13)
#define USART_CR1_TE    (1u << 3)
#define USART_CR1_RE    (1u << 2)

/* SysTick */
#define SYST_CSR        REG32(0xE000E010u)
#define SYST_RVR        REG32(0xE000E014u)
#define SYST_CVR        REG32(0xE000E018u)

/* System control block: vector table offset, reset request */
#define SCB_VTOR        REG32(0xE000ED08u)
#define SCB_AIRCR       REG32(0xE000ED0Cu)
#define SCB_AIRCR_SYSRESETREQ (0x05FA0000u | (1u << 2))

/* Debug MCU id code: DEV_ID in bits 11:0 (0x413 on the F405/F407) */
#define DBGMCU_IDCODE   REG32(0xE0042000u)

#define HSI_HZ          16000000u

#endif
