"""Screenshots for the README, written to ``docs/`` by the browser tests."""

from __future__ import annotations

import base64
from pathlib import Path

from playwright.sync_api import BrowserContext, Page

DOCS = Path(__file__).resolve().parents[2] / "docs"


def save(page: Page, name: str, max_kib: int = 350) -> Path:
    """Write ``docs/<name>``, unless only a few anti-aliased pixels changed since the last run
    (Chromium's rasteriser varies slightly): the picture in git changes when the inbox does."""
    picture = page.screenshot()
    assert len(picture) < max_kib * 1024, f"{name} is {len(picture) // 1024} KiB"
    DOCS.mkdir(exist_ok=True)
    path = DOCS / name
    if not path.exists() or pixels_changed(page.context, path.read_bytes(), picture) > 200:
        path.write_bytes(picture)
    return path


def pixels_changed(context: BrowserContext, old: bytes, new: bytes) -> int:
    """How many pixels differ between two PNGs (all of them if the sizes differ)."""
    scratch = context.new_page()
    try:
        return int(
            scratch.evaluate(
                """async ([a, b]) => {
                  const load = (data) => new Promise((ok, fail) => {
                    const img = new Image();
                    img.onload = () => ok(img);
                    img.onerror = fail;
                    img.src = "data:image/png;base64," + data;
                  });
                  const [x, y] = [await load(a), await load(b)];
                  if (x.width !== y.width || x.height !== y.height) return x.width * x.height;
                  const pixels = (img) => {
                    const canvas = document.createElement("canvas");
                    [canvas.width, canvas.height] = [img.width, img.height];
                    const g = canvas.getContext("2d");
                    g.drawImage(img, 0, 0);
                    return new Uint32Array(g.getImageData(0, 0, img.width, img.height).data.buffer);
                  };
                  const [p, q] = [pixels(x), pixels(y)];
                  let changed = 0;
                  for (let i = 0; i < p.length; i++) if (p[i] !== q[i]) changed++;
                  return changed;
                }""",
                [base64.b64encode(old).decode(), base64.b64encode(new).decode()],
            )
        )
    finally:
        scratch.close()
