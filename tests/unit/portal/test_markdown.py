from portal.markdown import render_markdown


def test_markdown_becomes_html():
    html = render_markdown(
        "# Lab 1\n\nLog in to **esxi-01** with `root`.\n\n| host | IP |\n|---|---|\n| esxi-01 | 10.0.0.11 |"
    )
    assert "<h1" in html and "Lab 1</h1>" in html
    assert "<strong>esxi-01</strong>" in html
    assert "<code>root</code>" in html
    assert "<td>10.0.0.11</td>" in html


def test_scripts_and_handlers_are_removed():
    html = render_markdown(
        "Hello <script>alert(1)</script> <img src=x onerror=alert(2)> <iframe src=https://evil></iframe>"
    )
    assert "<script" not in html and "alert(1)" not in html
    assert "onerror" not in html
    assert "<iframe" not in html


def test_javascript_links_are_removed_and_links_get_rel():
    html = render_markdown("[click](javascript:alert(1)) and [docs](https://docs.vmware.com)")
    assert "javascript:" not in html
    assert 'href="https://docs.vmware.com"' in html
    assert "noopener" in html


def test_empty_text_is_empty():
    assert render_markdown("") == ""
