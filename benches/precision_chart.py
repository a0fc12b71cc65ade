"""Draw a bar chart PNG of the VGG16 conv base's images/s per precision (f32, bf16, int8),
vggserve beside PyTorch, one panel per batch size, with the precision that
--conv-precision auto chose marked.

Input: the JSON that benches/precision_auto.sh writes (bench-out/precision.json):
  {"machine": ..., "date": ..., "command": ..., "batch_sizes": [1, 8, 20],
   "rows": [{"engine": "vggserve"|"PyTorch", "precision": "f32"|"bf16"|"int8",
             "batch": 1, "images_per_second": 10.6}, ...],
   "auto_chose": "int8"}
A missing (engine, precision, batch) row draws no bar, just a small "n/a" where the bar would stand.

  benches/precision_auto.sh
  .venv/bin/python benches/precision_chart.py bench-out/precision.json docs/precision.png

Pillow only. Text is set in DejaVu Sans where the system has it, else in Pillow's built-in
font (ImageFont.load_default(size=...), Pillow >= 10.1), which has no "×" glyph, so the title
then says "150x150". Same JSON and font -> same PNG bytes.
"""
import functools
import json
import math
import sys

from PIL import Image, ImageDraw, ImageFont

W, H = 1200, 500
PRECISIONS = ["f32", "bf16", "int8"]
ENGINES = [("vggserve", (38, 110, 190)), ("PyTorch", (238, 120, 40))]
INK, GREY, GRID = (30, 30, 30), (110, 110, 110), (225, 225, 225)
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 100, 70  # plot margins, px
GAP = 30  # between panels


@functools.cache
def font(size):
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


TIMES = "×" if font(12).getname()[0] == "DejaVu Sans" else "x"


def nice_step(top, ticks=5):
    """A 1/2/2.5/5 x 10^k step giving about `ticks` gridlines up to `top`."""
    raw = top / ticks
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)


def text(d, xy, s, size, fill=INK, anchor="mm"):
    d.text(xy, s, font=font(size), fill=fill, anchor=anchor)


def main(src, dst):
    data = json.load(open(src))
    rate = {(r["engine"], r["precision"], r["batch"]): r["images_per_second"] for r in data["rows"]}
    batches, auto = data["batch_sizes"], data.get("auto_chose")

    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    text(d, (W / 2, 22), f"VGG16 conv base, 150{TIMES}150, images/s (higher is better)", 22)
    text(d, (W / 2, 50), f"{data['machine']} · {data['date']} · auto chose: {auto or 'n/a'}", 15, GREY)
    for i, (name, colour) in enumerate(ENGINES):  # legend, top right
        x = W - RIGHT - 220 + i * 110
        d.rectangle([x, 16, x + 14, 30], fill=colour)
        text(d, (x + 20, 23), name, 15, anchor="lm")

    # Shared y axis: 0 .. a round number above the largest value.
    step = nice_step(max(rate.values(), default=1) * 1.1)
    ymax = step * math.ceil(max(rate.values(), default=1) * 1.1 / step)
    y0, y1 = H - BOTTOM, TOP
    ypix = lambda v: y0 - (y0 - y1) * v / ymax
    for k in range(round(ymax / step) + 1):
        v, y = k * step, ypix(k * step)
        d.line([LEFT, y, W - RIGHT, y], fill=GRID)
        text(d, (LEFT - 8, y), f"{v:g}", 14, GREY, "rm")
    label = Image.new("RGBA", (120, 20), (255, 255, 255, 0))
    ImageDraw.Draw(label).text((60, 10), "images/s", font=font(14), fill=GREY, anchor="mm")
    label = label.rotate(90, expand=True)
    img.paste(label, (8, int((y0 + y1) / 2 - 60)), label)

    pw = (W - LEFT - RIGHT - GAP * (len(batches) - 1)) / len(batches)
    group_w = pw / len(PRECISIONS)
    bar_w = group_w * 0.32
    for p_i, batch in enumerate(batches):
        px = LEFT + p_i * (pw + GAP)
        d.line([px, y0, px + pw, y0], fill=INK, width=1)
        text(d, (px + pw / 2, y1 - 10), f"batch {batch}", 16)
        for g_i, prec in enumerate(PRECISIONS):
            cx = px + (g_i + 0.5) * group_w
            for e_i, (engine, colour) in enumerate(ENGINES):
                bx = cx + (e_i - 1) * bar_w + (e_i * 2 - 1) * 2  # 4 px gap between the pair
                v = rate.get((engine, prec, batch))
                if v is None:
                    text(d, (bx + bar_w / 2, y0 - 8), "n/a", 12, GREY)
                    continue
                d.rectangle([bx, ypix(v), bx + bar_w, y0], fill=colour)
                size = next(z for z in range(13, 7, -1) if font(z).getlength(f"{v:.1f}") <= bar_w + 3 or z == 8)
                text(d, (bx + bar_w / 2, ypix(v) - 4), f"{v:.1f}", size, anchor="mb")
            text(d, (cx, y0 + 14), prec, 15)
            if prec == auto:
                d.rounded_rectangle([cx - 22, y0 + 27, cx + 22, y0 + 45], radius=9, fill=(200, 40, 40))
                text(d, (cx, y0 + 36), "auto", 13, "white")
    img.save(dst, optimize=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} PRECISION_JSON OUT_PNG")
    main(sys.argv[1], sys.argv[2])
