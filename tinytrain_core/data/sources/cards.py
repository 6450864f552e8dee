"""Target `cards` (stands in for Aircraft: few classes, many designs): 52 playing cards, each
drawn by ~27 historical and regional decks of Debian's gnome-cards-data (aisleriot).

Each deck is one SVG laid out as a 13 x 5 grid (rows: clubs, diamonds, hearts, spades,
jokers/back). Near-duplicate decks (a bitmap copy of a vector deck, a renamed copy) are
dropped so a card's images are different designs.
"""
from __future__ import annotations

import gzip
import io
import shutil
import subprocess
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from ..domains import BUILTIN
from ..install import source_record
from .common import DomainWriter, to_square

DECKS = Path("/usr/share/aisleriot/cards")
DUPLICATES = {"anglo_bitmap", "gnomangelo_bitmap", "Атласные"}
SUITS = ["clubs", "diamonds", "hearts", "spades"]
RANKS = ["ace", "2", "3", "4", "5", "6", "7", "8", "9", "10", "jack", "queen", "king"]
MIN_IMAGES = 6


def _render(deck: Path, cell_w: int = 160) -> Image.Image:
    """librsvg's rsvg-convert draws a deck in ~1.5 s, cairosvg in ~17 s: prefer it."""
    data = gzip.open(deck).read() if deck.suffix == ".svgz" else deck.read_bytes()
    if shutil.which("rsvg-convert"):
        png = subprocess.run(["rsvg-convert", "-w", str(13 * cell_w)], input=data,
                             capture_output=True, check=True).stdout
    else:
        import cairosvg
        png = cairosvg.svg2png(bytestring=data, output_width=13 * cell_w)
    return Image.open(io.BytesIO(png))


def build(profile: str) -> dict:
    decks = sorted(p for p in DECKS.glob("*.svg*") if p.name.split(".")[0] not in DUPLICATES)
    if not decks:
        raise FileNotFoundError(f"no decks in {DECKS}: install Debian's gnome-cards-data")
    w = DomainWriter("cards")
    for deck in tqdm(decks, desc="cards", unit="deck"):
        try:
            sheet = _render(deck)
        except Exception as e:  # noqa: BLE001 - a deck cairosvg cannot draw is skipped
            print(f"skipping deck {deck.name}: {type(e).__name__}: {e}")
            continue
        cw, ch = sheet.width / 13, sheet.height / 5
        for r, suit in enumerate(SUITS):
            for c, rank in enumerate(RANKS):
                card = sheet.crop((round(c * cw), round(r * ch), round((c + 1) * cw), round((r + 1) * ch)))
                w.add(f"{rank}-of-{suit}", to_square(card, fit="pad", margin=0.02))
    role, stands = BUILTIN["cards"]
    return w.finish(role, stands, [source_record("apt", "gnome-cards-data", "GPL-3+ / LGPL / GFDL")],
                    MIN_IMAGES, seed=0, splits={"train": [], "val": sorted(w.count), "test": sorted(w.count)},
                    split_images="by_order",
                    description=f"{len(decks)} decks x 52 cards; val and test share the 52 classes "
                                "and split the decks (first fifth of each card's decks: val)",
                    decks=[d.name for d in decks])
