"""`digest check` and the check `digest send` runs first."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import REFERENCE_STORY, Captured, Cli

BAD_MJML = """<mjml><mj-body><mj-section><mj-column>
<mj-image src="https://example.org/a.png" />
<mj-text><a href="ftp://example.org/file">file</a> {{ "{{ left over" }}</mj-text>
</mj-column></mj-section></mj-body></mjml>
"""


def with_templates(cli: Cli, tmp_path: Path, **files: str) -> Cli:
    folder = tmp_path / "overrides"
    folder.mkdir(exist_ok=True)
    for name, body in files.items():
        (folder / name.replace("_", ".")).write_text(body, encoding="utf-8")
    cli.env["DIGEST_TEMPLATES_DIR"] = str(folder)
    return cli


def test_check_passes_for_the_reference_story(ready: Cli) -> None:
    ready("stories", "import", str(REFERENCE_STORY))
    assert ready("check", "next").output == "next edition: ok\n"
    ready("edition", "build")
    assert ready("check", "1").output == "edition 1: ok\n"


def test_check_reports_each_problem_on_its_own_line(ready: Cli, tmp_path: Path) -> None:
    ready("stories", "import", str(REFERENCE_STORY))
    with_templates(ready, tmp_path, digest_mjml=BAD_MJML)
    result = ready("check", ok=False)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "next edition: image without alt text: https://example.org/a.png",
        "next edition: link is not http(s): ftp://example.org/file",
        "next edition: no unsubscribe link in the HTML part",
        "next edition: unrendered template syntax '{{' in the HTML part",
    ]


def test_check_reports_html_over_gmail_clipping_size(ready: Cli, tmp_path: Path) -> None:
    bullets = "".join(f"- Bullet {i} {'padding words ' * 40}\n" for i in range(250))
    (tmp_path / "huge.txt").write_text(f"Huge\nA huge story.\n{bullets}", encoding="utf-8")
    ready("stories", "import", str(tmp_path / "huge.txt"))
    result = ready("check", ok=False)
    assert result.exit_code == 1
    [line] = result.output.splitlines()
    found = re.match(r"next edition: HTML part is (\d+) KB as sent \(quoted-printable\)", line)
    assert found and int(found.group(1)) > 102, line
    assert "Gmail clips from about 102 KB" in line


def test_check_measures_the_html_part_as_sent_and_warns_from_90_kb(
    ready: Cli, captured: Captured, tmp_path: Path
) -> None:
    # 'é' is 2 bytes of UTF-8 but 6 of quoted-printable (=C3=A9): about 40 KB of HTML
    # goes out as nearly 100 KB, which is what Gmail measures.
    bullets = "".join(f"- Bullet {i} {'é' * 200}\n" for i in range(70))
    (tmp_path / "accents.txt").write_text(f"Accents\nA story.\n{bullets}", encoding="utf-8")
    ready("stories", "import", str(tmp_path / "accents.txt"))
    assert len(ready("preview", "next", "--format", "html").output.encode()) < 60 * 1024
    result = ready("check")  # a warning: the check still passes
    [line] = result.output.splitlines()
    found = re.fullmatch(
        r"next edition: warning: HTML part is (\d+) KB as sent \(quoted-printable\).*", line
    )
    assert found, line
    assert 90 <= int(found.group(1)) < 102  # under Gmail's limit, but too close to it
    assert line.endswith("keep it under 90 KB")
    ready("subscribers", "add", "reader@example.com")
    ready("edition", "build")
    assert "sent 1, failed 0" in ready("send").output  # and does not stop a send
    assert len(captured.envelopes) == 1


def test_check_reports_an_mjml_compile_failure(ready: Cli, tmp_path: Path) -> None:
    ready("stories", "import", str(REFERENCE_STORY))
    with_templates(ready, tmp_path, digest_mjml="<mjml><mj-body><p>unclosed")
    result = ready("check", ok=False)
    assert result.exit_code == 1
    assert "MJML compile failed" in result.output
    assert len(result.output.splitlines()) == 1


def test_send_refuses_a_failing_edition_unless_forced(
    ready: Cli, captured: Captured, tmp_path: Path
) -> None:
    ready("stories", "import", str(REFERENCE_STORY))
    ready("subscribers", "add", "reader@example.com")
    ready("edition", "build")
    with_templates(ready, tmp_path, digest_mjml=BAD_MJML)
    refused = ready("send", ok=False)
    assert refused.exit_code == 1
    assert "failed the pre-send check" in refused.output
    assert "image without alt text" in refused.output
    assert captured.envelopes == []
    assert "draft" in ready("status").output
    forced = ready("send", "--force")
    assert "sent 1, failed 0" in forced.output
    assert len(captured.envelopes) == 1


def test_check_a_story_quoting_template_syntax_is_not_a_broken_template(
    ready: Cli, tmp_path: Path
) -> None:
    (tmp_path / "braces.txt").write_text(
        "Templates 101: what {{ name }} means\n"
        "A story about {% raw %} blocks, quoted as text.\n"
        "- Jinja writes {{ value }} and {% if %} tags.\n",
        encoding="utf-8",
    )
    ready("stories", "import", str(tmp_path / "braces.txt"))
    result = ready("check", "next")
    assert result.exit_code == 0, result.output
    assert "unrendered" not in result.output
    html = ready("preview", "next").output
    assert "{{ name }}" in html and "{% if %}" in html
