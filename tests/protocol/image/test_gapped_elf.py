"""A gapped ELF is signed with its gap filled 0xFF, as objcopy's .hex or .srec of the same ELF would give.

Built with the real ``arm-none-eabi-gcc``: a vector table and code at 0x08020200, a table the linker
script places at 0x08021000 (a gap of erased flash between).  ``arm-none-eabi-objcopy`` makes the .hex and
.srec; all three load to the same bytes, the gap is 0xFF, and ``stm32ota sign`` gives byte-identical images
from each (``objcopy -O binary`` alone fills the gap with 0x00, which is not what erased flash holds).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from protocol.cli import main
from protocol.image import load_file
from tests.conftest import require_tool

from .conftest import KEYS

LINKER_SCRIPT = """
MEMORY { FLASH (rx) : ORIGIN = 0x08020200, LENGTH = 0x5FE00  RAM (rwx) : ORIGIN = 0x20000000, LENGTH = 128K }
SECTIONS {
  .text : { KEEP(*(.vectors)) *(.text*) } > FLASH
  .table 0x08021000 : { KEEP(*(.table)) } > FLASH
}
"""
SOURCE = """
extern void reset(void);
__attribute__((section(".vectors"), used)) const void *vectors[2] = { (void *)0x20020000, (void *)reset };
__attribute__((section(".table"), used)) const unsigned char table[64] = { 1, 2, 3, 4, 5, 6, 7, 8 };
void reset(void) { for (;;) { } }
"""
GAP_START, TABLE = 0x08020200, 0x08021000


@pytest.fixture(scope="module")
def gapped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = require_tool("arm-none-eabi-gcc", "apt-get install gcc-arm-none-eabi")
    objcopy = require_tool("arm-none-eabi-objcopy", "apt-get install binutils-arm-none-eabi")
    work = tmp_path_factory.mktemp("gapped")
    (work / "app.ld").write_text(LINKER_SCRIPT)
    (work / "app.c").write_text(SOURCE)
    elf = work / "app.elf"
    subprocess.run(
        [gcc, "-mcpu=cortex-m4", "-mthumb", "-Os", "-nostdlib", "-T", "app.ld", "app.c", "-o", str(elf)],
        cwd=work,
        check=True,
        capture_output=True,
    )
    for fmt, ext in (("ihex", "hex"), ("srec", "srec"), ("binary", "bin")):
        subprocess.run([objcopy, "-O", fmt, str(elf), str(work / f"app.{ext}")], check=True, capture_output=True)
    return work


@pytest.mark.interop
def test_elf_hex_and_srec_load_to_the_same_bytes_with_an_erased_gap(gapped: Path) -> None:
    elf, hex_, srec = (load_file(gapped / f"app.{ext}") for ext in ("elf", "hex", "srec"))
    assert elf.address == hex_.address == srec.address == GAP_START
    assert elf.data == hex_.data == srec.data
    assert len(elf.segments) == 2 and elf.segments[1][0] == TABLE
    code_end = GAP_START + elf.segments[0][1]
    gap = elf.data[code_end - GAP_START : TABLE - GAP_START]
    assert gap and set(gap) == {0xFF}
    assert elf.data[TABLE - GAP_START : TABLE - GAP_START + 8] == bytes(range(1, 9))
    objcopy_bin = (gapped / "app.bin").read_bytes()  # objcopy -O binary: the gap as 0x00
    assert len(objcopy_bin) == len(elf.data) and set(objcopy_bin[code_end - GAP_START : TABLE - GAP_START]) == {0}


@pytest.mark.interop
def test_signing_the_elf_equals_signing_its_hex_and_srec(gapped: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = KEYS / "dev-ed25519-DO-NOT-USE-IN-PRODUCTION.pem"
    outputs = []
    for ext in ("elf", "hex", "srec"):
        out = gapped / f"signed-from-{ext}.bin"
        args = ["sign", "-k", str(key), "-v", "1.0.0", "-H", "0x200", "--pad-header", "-S", "0x60000"]
        assert main([*args, str(gapped / f"app.{ext}"), str(out)]) == 0, capsys.readouterr().err
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
