"""Untrusted text on a terminal: control characters made visible, so text can never drive the terminal.

An LLM's answer, a scraped web page or a piped file may hold escape sequences: OSC 52 writes the clipboard, CSI
sequences clear the screen or move the cursor over earlier lines, OSC 0 sets the window title, a lone carriage
return or backspaces overwrite what was printed. The console agents print such text with every control character
replaced by a visible stand-in (ESC becomes "␛", the Unicode control pictures; C1 controls become `\\x9b`), which is
done character by character, so a sequence split across streamed tokens is neutralized too. Newlines and tabs stay;
a carriage return right before a newline (Windows line ends) is dropped. Only the agents' own colours, built from
validated SGR codes, reach the terminal as escape sequences.
"""

from __future__ import annotations

import re

__all__ = ["is_sgr_style", "neutralize_controls"]

# C0 controls except tab and newline, DEL, and the C1 controls (U+0080-U+009F: 8-bit CSI, OSC, ...).
_CONTROLS = re.compile("\r\n|[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SGR_STYLE = re.compile(r"[0-9;]{0,40}")


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\r\n":
        return "\n"
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)  # the control pictures: ␀ ... ␟ (ESC is ␛)
    if code == 0x7F:
        return "\u2421"  # ␡
    return f"\\x{code:02x}"


def neutralize_controls(text: str) -> str:
    """`text` with every control character except newline and tab replaced by a visible stand-in."""
    return _CONTROLS.sub(_visible, text)


def is_sgr_style(style: object) -> bool:
    """Whether `style` is a plain SGR parameter list (`"92;1"`, `31`): digits and semicolons only."""
    return isinstance(style, int) or (isinstance(style, str) and _SGR_STYLE.fullmatch(style) is not None)
