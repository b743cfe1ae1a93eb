"""What the library prints for people: tables that stay readable in a log file, progress bars.

* `show_table` prints a rich table as boxes on a wide enough terminal, and as a plain
  Markdown table when stdout is not a terminal (CI logs, ``| tee``) or is too narrow.
* `progress_bar` is a context manager yielding an ``advance()`` callable: a rich bar when
  enabled, nothing otherwise.

rich is imported inside the functions: `import edgematting` and ``--help`` stay fast.
"""
from __future__ import annotations


def _plain(cell) -> str:
    from rich.text import Text

    if isinstance(cell, Text):
        return cell.plain
    try:
        return Text.from_markup(str(cell)).plain
    except Exception:  # noqa: BLE001 - not markup after all
        return str(cell)


def table_markdown(table) -> str:
    """A rich Table as a plain Markdown table (title as a heading line, markup removed)."""
    cols = table.columns
    head = [_plain(c.header) for c in cols]
    rows = list(zip(*[[_plain(x) for x in c._cells] for c in cols])) if cols else []
    esc = lambda s: s.replace("|", "/").replace("\n", " ")  # noqa: E731
    lines = []
    if table.title:
        lines += [f"**{_plain(table.title)}**", ""]
    lines.append("| " + " | ".join(map(esc, head)) + " |")
    lines.append("|" + "".join("---:|" if c.justify == "right" else "---|" for c in cols))
    lines += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
    return "\n".join(lines)


def fits(table, console) -> bool:
    """True when `console` is a terminal wide enough for `table` without squeezing cells."""
    from rich.measure import Measurement

    if not console.is_terminal:
        return False
    need = Measurement.get(console, console.options.update(width=10_000), table).maximum
    return need <= console.width


def show_table(table, console=None) -> None:
    """Print `table`: boxes on a wide enough terminal, else Markdown (see the module doc)."""
    if console is None:
        from rich.console import Console

        console = Console()
    if fits(table, console):
        console.print(table)
    else:
        console.file.write(table_markdown(table) + "\n")
        console.file.flush()


class progress_bar:
    """Context manager yielding an `advance()` callable; a rich bar when enabled. `unit`
    (e.g. "frames") adds the rate, "12.3 frames/s"; `total` None: a count without an end."""

    def __init__(self, enabled: bool, total: int | None, label: str, unit: str | None = None):
        self.enabled, self.total, self.label, self.unit = enabled, total, label, unit
        self._bar = None

    def __enter__(self):
        if not self.enabled:
            return lambda: None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            ProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )

        columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
        if self.unit:
            unit = self.unit

            class Rate(ProgressColumn):
                def render(self, task):
                    from rich.text import Text

                    speed = task.finished_speed or task.speed
                    return Text(f"{speed:.1f} {unit}/s" if speed else f"- {unit}/s")

            columns.append(Rate())
        self._bar = Progress(*columns, transient=True)
        self._bar.__enter__()
        task = self._bar.add_task(self.label, total=self.total)
        return lambda: self._bar.advance(task)

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)
        return False
