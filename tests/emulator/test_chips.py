"""Chip profiles: sector maps, slot layouts, lookups."""

from __future__ import annotations

import itertools

import pytest

from emulator.chips import CHIPS, DEFAULT_CHIP, ChipProfile, Sector, chip_profile, make_sectors

KIB = 1024


def test_the_three_required_chips_are_there_and_f407_is_the_default() -> None:
    assert set(CHIPS) >= {"stm32f407vg", "stm32f103c8", "stm32l476rg"}
    assert DEFAULT_CHIP == "stm32f407vg"


def test_f407_sector_map_and_slot_layout_match_the_architecture_doc() -> None:
    chip = CHIPS["stm32f407vg"]
    assert [s.size for s in chip.sectors] == [16 * KIB] * 4 + [64 * KIB] + [128 * KIB] * 7
    assert chip.flash_size == 1024 * KIB
    assert chip.dev_id == 0x413
    assert chip.write_width == 4
    layout = chip.layout
    assert layout.bootloader == (0x08000000, 64 * KIB)
    assert layout.state == (0x08010000, 64 * KIB)
    assert layout.primary == (0x08020000, 384 * KIB)
    assert layout.secondary == (0x08080000, 384 * KIB)
    assert layout.scratch == (0x080E0000, 128 * KIB)
    assert [s.index for s in chip.sectors_in(*layout.primary)] == [5, 6, 7]
    assert [s.index for s in chip.sectors_in(*layout.secondary)] == [8, 9, 10]


@pytest.mark.parametrize(
    ("name", "size", "page", "width", "dev_id"),
    [("stm32f103c8", 64 * KIB, 1 * KIB, 2, 0x410), ("stm32l476rg", 1024 * KIB, 2 * KIB, 8, 0x415)],
)
def test_page_chips(name: str, size: int, page: int, width: int, dev_id: int) -> None:
    chip = CHIPS[name]
    assert chip.flash_size == size
    assert {s.size for s in chip.sectors} == {page}
    assert chip.write_width == width
    assert chip.dev_id == dev_id


@pytest.mark.parametrize("chip", list(CHIPS.values()), ids=list(CHIPS))
def test_layout_areas_are_disjoint_whole_sectors_inside_flash(chip: ChipProfile) -> None:
    areas = sorted(chip.layout.areas().values())
    for (start, size), (next_start, _) in itertools.pairwise(areas):
        assert start + size <= next_start
    for start, size in areas:
        assert chip.flash_base <= start and start + size <= chip.flash_end
        sectors = chip.sectors_in(start, size)
        assert sectors[0].start == start and sectors[-1].end == start + size
    primary = chip.sectors_in(*chip.layout.primary)
    secondary = chip.sectors_in(*chip.layout.secondary)
    assert [s.size for s in primary] == [s.size for s in secondary]
    scratch = chip.sector_at(chip.layout.scratch[0])
    assert scratch.size >= max(s.size for s in primary)
    assert len(chip.uid) == 12
    assert chip.erase_time(chip.sectors[0]) > 0 and chip.program_time_s > 0


def test_sector_lookups() -> None:
    chip = CHIPS["stm32f407vg"]
    assert chip.sector_at(0x08000000) == Sector(0, 0x08000000, 16 * KIB)
    assert chip.sector_at(0x0801FFFF).index == 4
    assert chip.sector_at(0x080FFFFF).index == 11
    assert chip.sectors_in(0x08003FFF, 2) == [chip.sectors[0], chip.sectors[1]]
    assert chip.sectors_in(0x08000000, 0) == []
    with pytest.raises(ValueError):
        chip.sector_at(0x08100000)
    with pytest.raises(ValueError):
        chip.sector_at(0x07FFFFFF)
    l4 = CHIPS["stm32l476rg"]
    assert l4.sector_at(0x08080000).index == 256  # bank 2 starts at page 256


def test_chip_profile_lookup_is_case_insensitive_and_names_the_choices() -> None:
    assert chip_profile("STM32F103C8") is CHIPS["stm32f103c8"]
    with pytest.raises(KeyError, match="stm32f407vg"):
        chip_profile("stm32h743")


def test_a_profile_with_a_gap_or_a_ragged_area_is_refused() -> None:
    good = CHIPS["stm32f103c8"]
    with pytest.raises(ValueError, match="contiguous"):
        ChipProfile(
            name="x",
            dev_id=1,
            flash_base=good.flash_base,
            sectors=(Sector(0, good.flash_base, 1024), Sector(1, good.flash_base + 4096, 1024)),
            write_width=2,
            erase_time_s={1024: 0.02},
            program_time_s=1e-5,
            mass_erase_time_s=0.02,
            ram_size=1024,
            uid=bytes(12),
            layout=good.layout,
        )
    with pytest.raises(ValueError, match="whole sectors"):
        ChipProfile(
            name="x",
            dev_id=1,
            flash_base=good.flash_base,
            sectors=make_sectors(good.flash_base, [1024] * 64),
            write_width=2,
            erase_time_s={1024: 0.02},
            program_time_s=1e-5,
            mass_erase_time_s=0.02,
            ram_size=1024,
            uid=bytes(12),
            layout=type(good.layout)(
                bootloader=(good.flash_base, 1500),
                state=good.layout.state,
                primary=good.layout.primary,
                secondary=good.layout.secondary,
                scratch=good.layout.scratch,
            ),
        )
