"""/docs in a real Chromium, as on a machine without internet: every script,
style sheet and icon comes from the service itself."""

from urllib.parse import urlsplit

from playwright.sync_api import expect


def test_api_page_renders_with_no_request_to_another_host(page, server):
    elsewhere: list[str] = []

    def only_this_server(route):
        if urlsplit(route.request.url).hostname == "127.0.0.1" or route.request.url.startswith("data:"):
            route.continue_()
        else:  # what a machine without internet does to a CDN request
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    page.goto(server.url + "/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("SAM segmentation service")
    expect(page.locator(".opblock-summary-path", has_text="/segment").first).to_be_visible()
    assert elsewhere == []
    assert page.request.get(server.url + "/redoc").status == 404  # no second page, with a CDN logo
