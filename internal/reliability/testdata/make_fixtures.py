"""Writes the image fixtures that need Pillow, and Pillow's reference decodes.

Usage: python make_fixtures.py OUT_DIR

Writes into OUT_DIR:
  cmyk.jpg          Adobe CMYK JPEG of a four-colour quadrant image (as Photoshop/print workflows make)
  cmyk_gray.jpg     CMYK JPEG of a flat colour (mean check without edges)
  progressive.jpg   progressive RGB JPEG
  exif6_pil.jpg     the quadrant image stored rotated, with EXIF Orientation=6 written by Pillow
  webp_named.jpg    a WebP image with a .jpg name
  photo.webp        a WebP image with its own extension (ignored by the scan)
  refs.json         {name: [R, G, B] mean of Pillow's upright RGB decode:
                     ImageOps.exif_transpose(img).convert("RGB")}
"""
import json
import os
import sys

from PIL import Image, ImageOps

COLOURS = [(230, 20, 20), (20, 220, 20), (20, 20, 230), (235, 235, 20)]


def quadrants(w, h):
    img = Image.new("RGB", (w, h))
    px = img.load()
    for y in range(h):
        for x in range(w):
            px[x, y] = COLOURS[(1 if x >= w // 2 else 0) + (2 if y >= h // 2 else 0)]
    return img


def mean_rgb(path):
    img = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    w, h = img.size
    data = list(img.getdata())
    return [sum(p[c] for p in data) / (w * h) for c in range(3)]


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    q = quadrants(64, 48)
    q.convert("CMYK").save(os.path.join(out, "cmyk.jpg"), quality=95)
    Image.new("RGB", (40, 30), (200, 120, 40)).convert("CMYK").save(os.path.join(out, "cmyk_gray.jpg"), quality=95)
    q.save(os.path.join(out, "progressive.jpg"), quality=95, progressive=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    # Stored as the camera sees it when turned: the upright image rotated 90° counter-clockwise.
    q.transpose(Image.Transpose.ROTATE_90).save(os.path.join(out, "exif6_pil.jpg"), quality=95, exif=exif.tobytes())
    q.save(os.path.join(out, "webp_named.jpg"), format="WEBP")
    q.save(os.path.join(out, "photo.webp"), format="WEBP")
    refs = {n: mean_rgb(os.path.join(out, n)) for n in ["cmyk.jpg", "cmyk_gray.jpg", "progressive.jpg", "exif6_pil.jpg"]}
    # Upright quadrant means, to check orientation beyond the mean colour.
    img = ImageOps.exif_transpose(Image.open(os.path.join(out, "exif6_pil.jpg"))).convert("RGB")
    w, h = img.size
    refs["exif6_pil.jpg:quadrants"] = [list(img.getpixel((x, y))) for x, y in [(w // 4, h // 4), (3 * w // 4, h // 4), (w // 4, 3 * h // 4), (3 * w // 4, 3 * h // 4)]]
    refs["exif6_pil.jpg:size"] = [w, h]
    with open(os.path.join(out, "refs.json"), "w") as f:
        json.dump(refs, f)


if __name__ == "__main__":
    main()
