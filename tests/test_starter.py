"""One starter: the shipped files found one way, `briefings init`, templates extending the shipped ones, the wheel."""

from __future__ import annotations

import html
import os
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
import tomlkit
import yaml

from briefings import config as config_module
from briefings import resources, starter
from briefings.errors import BriefingsError
from briefings.render import render
from conftest import ROOT, write_config
from render_samples import CREATED, sample_briefing


def test_the_wheel_carries_every_shipped_file_where_resources_looks():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    force_include = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert force_include == {name: f"briefings/_data/{name}" for name in resources.SHIPPED}


def test_a_checkout_finds_its_files_at_the_top_of_the_repo():
    assert resources.data_root() == ROOT
    assert resources.templates_dir() == ROOT / "templates"


# -- briefings init ----------------------------------------------------------------------------


def test_init_config_loads_and_points_at_its_templates(tmp_path):
    folder = tmp_path / "desk"
    written, kept = starter.init_folder(folder)
    assert kept == [] and folder / "config.toml" in written
    config = config_module.load(folder / "config.toml")
    assert config.render.templates == (folder / "templates").resolve()
    assert (config.render.templates / "briefing.html.j2").is_file()
    assert config.themes == config_module.default_themes()
    assert config.corpus.path == (folder / "sources").resolve()
    assert sorted(p.name for p in config.corpus.path.iterdir()) == sorted(p.name for p in resources.sources_dir().iterdir())
    # A real TOML edit: every other line of the shipped config (comments included) is as shipped.
    shipped = resources.shipped_config().read_text().splitlines()
    mine = (folder / "config.toml").read_text().splitlines()
    changed = [(a, b) for a, b in zip(shipped, mine) if a != b]
    assert len(shipped) == len(mine) and changed == [('templates = ""', 'templates = "templates"')]


def test_init_sets_templates_when_the_shipped_config_has_no_render_table(tmp_path, monkeypatch):
    shipped = tmp_path / "shipped.toml"
    shipped.write_text('[briefing]\ntitle = "Desk"\n\n[[feeds]]\nname = "A"\nurl = "https://a.example.org/feed"\n')
    monkeypatch.setattr(resources, "shipped_config", lambda: shipped)
    monkeypatch.setattr(config_module, "_DEFAULT_THEMES", None)  # read from this file, forgotten after the test
    folder = tmp_path / "desk"
    starter.init_folder(folder)
    config = config_module.load(folder / "config.toml")
    assert config.render.templates == (folder / "templates").resolve()
    assert config.briefing.title == "Desk" and [f.name for f in config.feeds] == ["A"]


def test_init_keeps_what_is_there_unless_forced(tmp_path):
    folder = tmp_path / "desk"
    starter.init_folder(folder)
    mine = folder / "templates" / "briefing.html.j2"
    mine.write_text('{% extends "default:briefing.html.j2" %}{% block footer %}mine{% endblock %}')
    written, kept = starter.init_folder(folder)
    assert written == [] and mine in kept and "mine" in mine.read_text()
    written, kept = starter.init_folder(folder, force=True)
    assert kept == [] and mine in written and "mine" not in mine.read_text()


# -- templates extending the shipped ones ------------------------------------------------------


def _config(tmp_path, templates: dict[str, str] | None = None):
    extra = ""
    if templates is not None:
        mine = tmp_path / "mine"
        mine.mkdir(parents=True)
        for name, text in templates.items():
            (mine / name).write_text(text)
        extra = '[render]\ntemplates = "mine"\n'
    return config_module.load(write_config(tmp_path, corpus=None, extra=extra))


def test_the_template_init_writes_renders_as_the_shipped_one(tmp_path):
    shipped_config = _config(tmp_path / "shipped")
    starter.init_folder(tmp_path / "desk")
    stub = (tmp_path / "desk" / "templates" / "briefing.html.j2").read_text()
    assert str(resources.templates_dir()) in stub
    config = _config(tmp_path / "user", {"briefing.html.j2": stub})
    shipped = render(sample_briefing(shipped_config), shipped_config, generated=CREATED)
    extended = render(sample_briefing(config), config, generated=CREATED)
    assert (extended.html, extended.web_html, extended.text) == (shipped.html, shipped.web_html, shipped.text)


BLOCKS = [
    # block, its override, text the override shows, shipped text it removes, shipped text kept elsewhere
    ("header", '<tr><td class="header"><h1 class="title">Norms desk</h1></td></tr>',
     "Norms desk", "Cybersecurity norms", "At a glance"),
    ("glance", "", None, "At a glance", "OSCE participating States test their cyber hotline"),
    ("section", '<tr><td class="section"><h2>{{ section.name | upper }}</h2></td></tr>',
     "CONFIDENCE-BUILDING MEASURES", "OSCE participating States test their cyber hotline", "From the reading list"),
    ("entry", '<p class="mine">{{ item.title }} (picked)</p>',
     "Paris Call working groups publish their recommendations (picked)", "Security Diplomacy", "At a glance"),
    ("reading_list", "", None, "From the reading list", "Made by briefings"),
    ("footer", '<tr><td class="footer"><p>Norms desk, {{ title }}</p></td></tr>',
     "Norms desk, Cyber Norms Briefing", "Made by briefings", "From the reading list"),
    ("styles", "{{ super() }}<style>.title { color: #7a1f1f; }</style>", "#7a1f1f", None, "At a glance"),
]


@pytest.mark.parametrize("block, body, shows, removes, keeps", BLOCKS, ids=[b[0] for b in BLOCKS])
def test_a_template_extending_the_shipped_one_overrides_one_block(tmp_path, block, body, shows, removes, keeps):
    template = f'{{% extends "default:briefing.html.j2" %}}\n{{% block {block} %}}{body}{{% endblock %}}\n'
    config = _config(tmp_path, {"briefing.html.j2": template})
    shipped_config = _config(tmp_path / "shipped")
    for html, shipped_html in zip(
        (lambda r: (r.html, r.web_html))(render(sample_briefing(config), config, generated=CREATED)),
        (lambda r: (r.html, r.web_html))(render(sample_briefing(shipped_config), shipped_config, generated=CREATED)),
    ):
        assert html != shipped_html
        if shows:
            assert shows in html
        if removes:
            assert removes in shipped_html and removes not in html
        assert keeps in html


def test_the_plain_text_extends_the_shipped_one_too(tmp_path):
    template = '{% extends "default:briefing.txt.j2" %}\n{% block footer %}--\nNorms desk\n{% endblock %}\n'
    config = _config(tmp_path, {"briefing.txt.j2": template})
    shipped_config = _config(tmp_path / "shipped")
    text = render(sample_briefing(config), config, generated=CREATED).text
    shipped = render(sample_briefing(shipped_config), shipped_config, generated=CREATED).text
    assert text == shipped[: shipped.rindex("\n--\n")] + "\n--\nNorms desk\n"


def test_a_file_named_like_a_shipped_one_still_replaces_it_in_every_page(tmp_path):
    styles = (resources.templates_dir() / "_styles.html.j2").read_text().replace("</style>", ".title { color: #7a1f1f; }\n</style>")
    config = _config(tmp_path, {"_styles.html.j2": styles})
    rendered = render(sample_briefing(config), config, generated=CREATED)
    assert "#7a1f1f" in rendered.html and "#7a1f1f" in rendered.web_html


# -- the built wheel, outside a checkout -------------------------------------------------------


def test_the_wheel_installs_inits_and_runs_outside_a_checkout(tmp_path):
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", str(wheels), str(ROOT)],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("briefings-*.whl")

    # A fresh venv with briefings from the wheel only; its dependencies come from this test
    # venv's site-packages, appended by a .pth (whose own .pth files, like the editable
    # install's, are not processed).
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        capture_output=True, text=True,
    )
    assert install.returncode == 0, install.stderr

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BRIEFINGS_CONFIG", "VIRTUAL_ENV")}
    outside = tmp_path / "elsewhere"
    outside.mkdir()

    def run(*args, cwd=outside):
        return subprocess.run([venv / "bin" / "briefings", *args], capture_output=True, text=True, cwd=cwd, env=env,
                              timeout=120)

    where = subprocess.run([python, "-c", "from briefings import resources; print(resources.data_root())"],
                           capture_output=True, text=True, cwd=outside, env=env, check=True).stdout.strip()
    assert Path(where) == site / "briefings" / "_data"

    result = run("init", "desk")
    assert result.returncode == 0, result.stderr
    desk = outside / "desk"
    # Offline: no feeds, so the briefing is made from the shipped reading list alone.
    doc = tomlkit.parse((desk / "config.toml").read_text())
    del doc["feeds"]
    (desk / "config.toml").write_text(tomlkit.dumps(doc))
    result = run("run", cwd=desk)
    assert result.returncode == 0, result.stderr
    pages = [p for p in (desk / "archive").glob("*.html") if p.name != "index.html"]
    assert len(pages) == 1
    page = pages[0].read_text()
    titles = [yaml.safe_load(p.read_text().split("---")[1])["title"] for p in sorted((ROOT / "sources").iterdir())]
    assert len(titles) == 5 and all(html.escape(t, quote=False) in page for t in titles)
    assert str(site) in (desk / "templates" / "briefing.html.j2").read_text()


# -- a fault in the user's templates -----------------------------------------------------------

FAULTS = [
    ("syntax", '{% extends "default:briefing.html.j2" %}\n{% block footer %}{{ title }\n{% endblock %}\n',
     "briefing.html.j2:2: unexpected '}'", "fix the template"),
    ("not-found", '{% extends "default:briefng.html.j2" %}\n', "no template named 'default:briefng.html.j2'",
     "briefing.html.j2, briefing.txt.j2"),
    ("undefined", '{% extends "default:briefing.html.j2" %}\n{% block footer %}\n{{ nope }}{% endblock %}\n',
     "briefing.html.j2:3: 'nope' is undefined", "fix the template"),
]


@pytest.mark.parametrize("template, message, hint", [f[1:] for f in FAULTS], ids=[f[0] for f in FAULTS])
def test_a_fault_in_a_user_template_is_one_line_naming_file_and_line(tmp_path, template, message, hint):
    config = _config(tmp_path, {"briefing.html.j2": template})
    with pytest.raises(BriefingsError) as caught:
        render(sample_briefing(config), config, generated=CREATED)
    assert message in caught.value.message and str(tmp_path / "mine") in caught.value.message
    assert hint in caught.value.hint


def test_run_with_a_broken_template_says_so_without_a_traceback(tmp_path, cli_run):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "briefing.html.j2").write_text('{% extends "default:briefing.html.j2" %}{% block footer %}{% endblok %}')
    cfg = write_config(tmp_path, extra='[render]\ntemplates = "mine"\n')
    result = cli_run("--config", cfg, "run")
    assert result.exit_code == 1
    assert "Traceback" not in result.output and f"{mine / 'briefing.html.j2'}:1: Encountered unknown tag 'endblok'" in result.stderr
