"""`briefings classify`: JSON lines in, one classification per line out (a stable interface)."""

from __future__ import annotations

import io
import json
import sys

import click

from briefings.cli import config_option, load_config

# Lines classified together (the model scores a batch much quicker than one line at a time), as long as more
# are waiting to be read.
BATCH = 256


@click.command()
@config_option
@click.argument("source", type=click.File("r", encoding="utf-8", errors="replace"), default="-")
@click.pass_context
def classify(ctx: click.Context, config_path, source) -> None:
    """Classify JSON lines from SOURCE (a file, or - for stdin) with the config's themes.

    \b
    Each input line: {"id": ..., "title": "...", "text": "..."} (text may be HTML).
    Each output line, one per input line, in order:
      {"id": ..., "theme": <id or null>, "themes": [<ids, primary first>],
       "scores": {<id>: float}, "evidence": {<id>: [terms]}}
    theme null means off-topic. A line that is not a JSON object gets
    {"id": null, "line": N, "error": "..."} and the exit status is 1.
    This format is stable: benchmarks and outside tools rely on it.
    """
    from briefings.classify import build_classifier

    config = load_config(ctx)
    classifier = build_classifier(config)
    out = sys.stdout
    failed = False
    chunk: list[tuple[int, object, str, str] | dict] = []  # lines read, classified together (BATCH at a time)

    def flush() -> None:
        texts = [(line[2], line[3], "") for line in chunk if isinstance(line, tuple)]  # the text is read as a summary
        results = iter(classifier.classify_texts(texts) if texts else ())
        for line in chunk:
            if isinstance(line, dict):
                out.write(json.dumps(line) + "\n")
                continue
            result = next(results)
            out.write(json.dumps({
                "id": line[1],
                "theme": result.theme,
                "themes": list(result.themes),
                "scores": result.scores,
                "evidence": {t: sorted({m.term for m in ms}) for t, ms in result.evidence.items()},
            }, ensure_ascii=False) + "\n")
        chunk.clear()

    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        try:
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not JSON ({exc.msg} at column {exc.colno}): write one JSON object per line") from None
            if not isinstance(item, dict):
                raise ValueError(f"expected a JSON object, got {_json_kind(item)}: write one JSON object per line")
            title = item.get("title") or ""
            text = item.get("text") or ""
            if not isinstance(title, str) or not isinstance(text, str):
                raise ValueError("title and text must be strings")
        except ValueError as exc:
            failed = True
            chunk.append({"id": None, "line": number, "error": str(exc)})
            continue
        chunk.append((number, item.get("id"), title, text))
        if len(chunk) >= BATCH or not _more_waiting(source):
            flush()
    flush()
    out.flush()
    if failed:
        ctx.exit(1)


def _more_waiting(source) -> bool:
    """Whether more input can be read at once: a file can, a pipe or terminal only when its writer has sent
    more. A program that writes one line and waits for the answer gets it without waiting for a batch."""
    import select

    try:
        return bool(select.select([source], [], [], 0)[0])
    except (OSError, ValueError, TypeError, io.UnsupportedOperation):  # no descriptor (text in memory): all there
        return True


def _json_kind(value) -> str:
    kinds = {list: "an array", str: "a string", bool: "true or false", type(None): "null"}
    return kinds.get(type(value), "a number")
