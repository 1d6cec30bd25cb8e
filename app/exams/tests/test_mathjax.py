"""Exams stored with MathJax pointed at the exam-content origin (exams/mathjax.py): the editor's
real exports change in exactly one place, everything that is not MathJax 2 or 4 stays as it was,
and a second run changes nothing."""

import zipfile
from pathlib import Path

import pytest

from exams.mathjax import local_mathjax, point_at_local_mathjax

SHARED_EXAMS = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "exams"
FONTS = '<script src="/mathjax/local-fonts.js"></script>'


def shared_index_html(name: str) -> str:
    package = SHARED_EXAMS / f"advanced-number-theory-{name}.zip"
    if not package.is_file():
        pytest.skip(f"{package} is absent (the shared fixtures are not part of the repository)")
    with zipfile.ZipFile(package) as archive:
        return archive.read("index.html").decode("utf-8")


def test_the_numbas_6_export_loads_mathjax_2_from_the_content_origin():
    page = shared_index_html("numbas6")
    cdn = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.9/MathJax.js?config=TeX-AMS-MML_HTMLorMML.js"
    assert page.count(cdn) == 1
    assert local_mathjax(page) == page.replace(cdn, "/mathjax/2/MathJax.js?config=TeX-AMS-MML_HTMLorMML.js")


def test_the_numbas_10_export_loads_mathjax_4_and_its_fonts_from_the_content_origin():
    page = shared_index_html("numbas10")
    tag = '<script type="text/javascript" src="https://cdn.jsdelivr.net/npm/mathjax@4/tex-svg.js"></script>'
    assert page.count(tag) == 1
    rewritten = local_mathjax(page)
    assert rewritten == page.replace(tag, FONTS + '<script type="text/javascript" src="/mathjax/4/tex-svg.js"></script>')
    # The exam's own configuration assigns a new MathJax object: the font path must be added after it.
    assert rewritten.index("\nMathJax = {") < rewritten.index(FONTS) < rewritten.index("/mathjax/4/tex-svg.js")


@pytest.mark.parametrize("name", ["numbas6", "numbas10"])
def test_storing_a_real_export_rewrites_its_launch_page_once(tmp_path, name):
    shared_index_html(name)  # skips without the shared fixtures
    with zipfile.ZipFile(SHARED_EXAMS / f"advanced-number-theory-{name}.zip") as archive:
        archive.extractall(tmp_path)
    assert point_at_local_mathjax(tmp_path) == 1
    launch_page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "/mathjax/" in launch_page and "cdnjs" not in launch_page and "cdn.jsdelivr" not in launch_page
    assert point_at_local_mathjax(tmp_path) == 0


@pytest.mark.parametrize(
    ("cdn_tag", "local_tag"),
    [
        pytest.param(
            '<script type="text/javascript" src="https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.5/MathJax.js'
            '?config=TeX-AMS_CHTML.js"></script>',
            '<script type="text/javascript" src="/mathjax/2/MathJax.js?config=TeX-AMS_CHTML.js"></script>',
            id="cdnjs 2.7.x with a config",
        ),
        pytest.param(
            '<script src="https://cdn.jsdelivr.net/npm/mathjax@2/MathJax.js?config=TeX-AMS-MML_HTMLorMML"></script>',
            '<script src="/mathjax/2/MathJax.js?config=TeX-AMS-MML_HTMLorMML"></script>',
            id="jsdelivr mathjax@2",
        ),
        pytest.param(
            '<script src="http://cdn.mathjax.org/mathjax/latest/MathJax.js?config=TeX-AMS-MML_HTMLorMML"></script>',
            '<script src="/mathjax/2/MathJax.js?config=TeX-AMS-MML_HTMLorMML"></script>',
            id="retired cdn.mathjax.org latest",
        ),
        pytest.param(
            '<script src="//cdn.mathjax.org/mathjax/2.7-latest/MathJax.js"></script>',
            '<script src="/mathjax/2/MathJax.js"></script>',
            id="protocol-relative 2.7-latest without a query",
        ),
        pytest.param(
            '<script id="MathJax-script" async src="https://cdn.jsdelivr.net/npm/mathjax@4.0.0/tex-chtml.js"></script>',
            FONTS + '<script id="MathJax-script" async src="/mathjax/4/tex-chtml.js"></script>',
            id="jsdelivr mathjax@4.0.0 tex-chtml",
        ),
        pytest.param(
            '<script src="https://unpkg.com/mathjax@4/startup.js"></script>',
            FONTS + '<script src="/mathjax/4/startup.js"></script>',
            id="unpkg mathjax@4 startup",
        ),
        pytest.param(
            "<script type='text/javascript' src='https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.9/MathJax.js"
            "?config=TeX-AMS_HTML&amp;delayStartupUntil=configured'></script>",
            "<script type='text/javascript' src='/mathjax/2/MathJax.js?config=TeX-AMS_HTML&amp;delayStartupUntil=configured'>"
            "</script>",
            id="single quotes",
        ),
        pytest.param(
            '<script src="https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.9/MathJax.js?config=TeX-AMS_HTML" '
            'integrity="sha512-tOav5w1OjvsSJzePRtt2uQPFwBoHt1VZcUq8l8nm5284LEKE9FSJBQryzMBzHxY5P0zRdNqEcpLIRVYFNgu1jw==" '
            'crossorigin="anonymous" referrerpolicy="no-referrer"></script>',
            '<script src="/mathjax/2/MathJax.js?config=TeX-AMS_HTML" crossorigin="anonymous" '
            'referrerpolicy="no-referrer"></script>',
            id="a CDN file's integrity hash is dropped",
        ),
    ],
)
def test_mathjax_from_a_cdn_is_loaded_from_the_content_origin(cdn_tag, local_tag):
    page = f"<!doctype html><html><head><title>Exam</title>\n{cdn_tag}\n</head><body>$x^2$</body></html>"
    rewritten = local_mathjax(page)
    assert rewritten == page.replace(cdn_tag, local_tag)
    assert local_mathjax(rewritten) == rewritten  # stored exams may be processed again


@pytest.mark.parametrize(
    "tag",
    [
        pytest.param('<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>',
                     id="MathJax 3, which the content origin does not serve"),
        pytest.param('<script src="https://cdnjs.cloudflare.com/ajax/libs/mathjax/3.2.2/es5/tex-svg.js"></script>',
                     id="MathJax 3 from cdnjs"),
        pytest.param('<script src="https://cdnjs.cloudflare.com/ajax/libs/jquery/3.7.1/jquery.min.js" '
                     'integrity="sha512-v2CJ7UaYy4JwqLDIrZUI/4hqeoQieOmAZNXBeQyjo21dadnwR+8ZaIJVT8EE2iyI61OV8e6M8PP2/4hpQINQ/g==">'
                     '</script>', id="another library from a CDN"),
        pytest.param('<script src="scripts/standalone_scripts/numbas-mathjax.js"></script>', id="the exam's own file"),
        pytest.param('<a href="https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.9/MathJax.js">MathJax</a>',
                     id="a link, not a script"),
    ],
)
def test_anything_else_is_left_alone(tag):
    page = f"<html><head>{tag}</head><body></body></html>"
    assert local_mathjax(page) == page


def test_bytes_that_are_not_utf8_survive_the_rewrite(tmp_path):
    cdn = b"https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.9/MathJax.js?config=TeX-AMS_HTML"
    latin1 = "<p>Th\xe9or\xe8me de B\xe9zout</p>".encode("latin-1")
    page = b'<html><head><meta charset="iso-8859-1"><script src="' + cdn + b'"></script></head><body>' + latin1
    (tmp_path / "index.html").write_bytes(page)
    (tmp_path / "other.html").write_bytes(latin1)
    assert point_at_local_mathjax(tmp_path) == 1
    assert (tmp_path / "index.html").read_bytes() == page.replace(cdn, b"/mathjax/2/MathJax.js?config=TeX-AMS_HTML")
    assert (tmp_path / "other.html").read_bytes() == latin1
