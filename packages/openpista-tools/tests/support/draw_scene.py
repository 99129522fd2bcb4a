"""Draws a known scene on the X display in $DISPLAY for the screen tests and keeps it there.

A borderless window covers the whole 1920x1080 screen: white, a solid red block at
(100, 100)-(500, 400), and large black words. Once everything is drawn it prints one JSON
line with where each thing is (the text's box as Tk measured it), then waits to be killed.
"""

from __future__ import annotations

import json
import tkinter

WIDTH, HEIGHT = 1920, 1080
RED_BLOCK = (100, 100, 500, 400)
WORDS = "OPENPISTA SEES"
WORDS_AT = (700, 600)


def main() -> None:
    root = tkinter.Tk()
    root.overrideredirect(True)  # no window manager here: no frame, placed where asked
    root.geometry(f"{WIDTH}x{HEIGHT}+0+0")
    canvas = tkinter.Canvas(root, width=WIDTH, height=HEIGHT, bg="white", highlightthickness=0)
    canvas.pack()
    canvas.create_rectangle(*RED_BLOCK, fill="#ff0000", outline="")
    # A negative size is in pixels, whatever DPI the server claims.
    text = canvas.create_text(
        *WORDS_AT, text=WORDS, font=("DejaVu Sans", -64, "bold"), anchor="nw", fill="black"
    )
    root.wait_visibility(canvas)
    root.update()
    # A round trip to the server after drawing: every request before it has been handled.
    root.winfo_rgb("white")
    print(
        json.dumps({"red_block": RED_BLOCK, "words": WORDS, "words_box": canvas.bbox(text)}),
        flush=True,
    )
    root.mainloop()


if __name__ == "__main__":
    main()
