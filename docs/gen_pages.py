"""Generate the reference pages at build time (mkdocs-gen-files runs this).

Each group's page is written from ``framework.menu``, the same models ``loom list`` prints, and
the API pages from the packages' docstrings, so neither can drift from the code.
"""

from __future__ import annotations

from pathlib import Path

import mkdocs_gen_files
import yaml

from framework.compose import Composer
from framework.matrix import markdown, matrix
from framework.menu import Group, default_options, menu_group

ROOT = Path(__file__).resolve().parents[1]
API_PACKAGES = ("framework", "components")


def _cell(text: str) -> str:
    """Text that stays inside one Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ") or " "


def group_page(group: Group) -> str:
    """One group's options and every field, with defaults and descriptions."""
    lines = [
        f"# `{group.name}`",
        "",
        f"Choose with `{group.name}=<option>`; set a field with `{group.name}.<key>=<value>`. "
        f"Default: `{group.default}`. The same table, in a terminal: `loom list {group.name}`.",
        "",
    ]
    for option in group.options:
        lines += [f"## `{option.name}`", ""]
        if option.doc:
            lines += [option.doc, ""]
        lines += [f"Built by [`{option.model}`][{option.model}] (`kind: {option.kind}`).", ""]
        if option.fields:
            lines += ["| key | default | description |", "|---|---|---|"]
            lines += [
                f"| `{f.key}` | `{_cell(f.default)}` | {_cell(f.description)} |"
                for f in option.fields
            ]
            lines.append("")
    return "\n".join(lines)


def recipes_page(composer: Composer) -> str:
    """Every recipe with its description."""
    lines = [
        "# Recipes",
        "",
        "Run one with `loom run recipe=<name>`; `loom list recipe` prints this list.",
        "",
        "| recipe | description |",
        "|---|---|",
    ]
    for name in composer.recipes():
        data = yaml.safe_load((composer.recipes_dir / f"{name}.yaml").read_text()) or {}
        lines.append(f"| `{name}` | {_cell(str(data.get('description', '')))} |")
    return "\n".join(lines) + "\n"


def matrix_page(composer: Composer) -> str:
    """The composition matrix, validated as the docs are built."""
    verdicts = matrix(composer)
    accepted = sum(v.accepted for v in verdicts)
    return "\n".join(
        [
            "# Composition matrix",
            "",
            "Every scenario with every option of every group it consumes (at a small size); "
            "every option of the groups an option reads under a setting (the fabric connector "
            "reads `storage`, `coding` and `placement`); and the executor × data-flow connector "
            "× steering queue combinations. Each one is accepted or refused at validation with "
            "the reason; the test suite validates them all and runs a seeded sample of the "
            "accepted ones to a verified result. `python -m framework.matrix --run --services` "
            "runs every accepted one, with an S3 server and a Kafka broker started on loopback "
            "for `storage=s3` and `events=kafka`.",
            "",
            f"{len(verdicts)} combinations: {accepted} accepted, {len(verdicts) - accepted} "
            "refused.",
            "",
            markdown(verdicts),
        ]
    )


def api_pages() -> list[tuple[str, str]]:
    """(page path, module) for every public module of the engine and the components."""
    pages = []
    for package in API_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__main__" or any(p.startswith("_") and p != "__init__" for p in parts):
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            module = ".".join(parts)
            pages.append((f"reference/api/{'/'.join(parts)}.md", module))
    return pages


def main() -> None:
    """Write the generated pages into the build."""
    composer = Composer()
    defaults = default_options(composer)
    groups = composer.groups()
    for name in groups:
        page = group_page(menu_group(composer, name, defaults.get(name, "none")))
        with mkdocs_gen_files.open(f"reference/groups/{name}.md", "w") as out:
            out.write(page)
    with mkdocs_gen_files.open("reference/groups/index.md", "w") as out:
        out.write(
            "# Groups\n\nEach group is one folder of `conf/`; pick an option with "
            "`<group>=<option>`.\n\n"
        )
        out.writelines(
            f"- [`{name}`]({name}.md): default `{defaults.get(name, 'none')}`\n" for name in groups
        )
    with mkdocs_gen_files.open("reference/recipes.md", "w") as out:
        out.write(recipes_page(composer))
    with mkdocs_gen_files.open("reference/matrix.md", "w") as out:
        out.write(matrix_page(composer))
    pages = api_pages()
    with mkdocs_gen_files.open("reference/api/index.md", "w") as out:
        out.write("# API\n\nFrom the docstrings of every public module.\n\n")
        out.writelines(
            f"- [`{module}`]({page.removeprefix('reference/api/')})\n" for page, module in pages
        )
    for page, module in pages:
        with mkdocs_gen_files.open(page, "w") as out:
            out.write(f"# `{module}`\n\n::: {module}\n")


main()
