"""Drives the dashboard in headless Chromium (Playwright), for tests/dashboard/main.rs.

Usage: browser_check.py URL TOKEN CLIENT_ID SCREENSHOT CHROMIUM

Every wait is bounded; the first failed expectation ends the run with a non-zero status.
"""

import sys

from playwright.sync_api import expect, sync_playwright

STEP_MS = 30_000
CHART_MS = 40_000


def last_point(page, canvas, points):
    """Waits until the chart has `points` points, the newest above zero; returns it."""
    page.wait_for_function(
        """([id, count]) => {
            const points = JSON.parse(document.getElementById(id).dataset.points || "[]");
            return points.length >= count && points[points.length - 1] > 0;
        }""",
        arg=[canvas, points],
        timeout=CHART_MS,
    )
    return page.evaluate(
        "(id) => JSON.parse(document.getElementById(id).dataset.points).at(-1)", canvas
    )


def search(page, section, fields):
    """Fills a section's search form and submits it."""
    scope = page.locator(f"#{section}")
    for label, value in fields.items():
        scope.get_by_label(label, exact=True).fill(value)
    scope.get_by_role("button", name="Search").click()


def main():
    url, token, client_id, screenshot, chromium = sys.argv[1:6]
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu"], timeout=STEP_MS
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(STEP_MS)
        page.goto(url)

        # A wrong token stays on the login form, saying why.
        page.get_by_label("API token").fill("not-the-token-0123456789")
        page.get_by_role("button", name="Log in").click()
        expect(page.locator("#login-error")).to_contain_text("refused the token")
        expect(page.locator("#app")).to_be_hidden()

        page.get_by_label("API token").fill(token)
        page.get_by_role("button", name="Log in").click()
        expect(page.locator("#app")).to_be_visible()
        nodes = page.locator("#nodes tbody tr")
        expect(nodes).to_have_count(3)
        expect(page.locator("#nodes tbody .ok")).to_have_count(3)
        expect(page.locator("#nodes tbody")).to_contain_text("leader")
        print("overview: 3 healthy members")

        # The rate needs two samples; three points make a line in the screenshot.
        received = last_point(page, "chart-received", 3)
        connections = last_point(page, "chart-connections", 1)
        print(f"charts: {received} messages/s received, {connections} connected")

        search(page, "clients", {"Client id starts with": client_id})
        rows = page.locator("#clients-table tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text(client_id)
        search(page, "sessions", {"Client id starts with": client_id})
        expect(page.locator("#sessions-table tbody tr")).to_have_count(1)
        search(page, "subscriptions", {"Client id": client_id})
        expect(page.locator("#subscriptions-table tbody")).to_contain_text(f"{client_id}/#")
        search(page, "retained", {"Topic filter": f"{client_id}/#"})
        expect(page.locator("#retained-table tbody")).to_contain_text(f"{client_id}/retained")
        page.screenshot(path=screenshot, full_page=True)
        print(f"searches: client, session, subscription, retained message found; {screenshot}")

        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name=f"Kick {client_id}").click()
        expect(page.locator("#status")).to_contain_text(f"{client_id} kicked")
        # The kick is done when the node that held the client has closed it: search until
        # the list no longer has it.
        for _ in range(20):
            search(page, "clients", {"Client id starts with": client_id})
            page.wait_for_timeout(500)
            if rows.count() == 0:
                break
        expect(rows).to_have_count(0)
        search(page, "sessions", {"Client id starts with": client_id})
        expect(page.locator("#sessions-table tbody .no")).to_have_count(1)
        print("kick: the client is gone, its session stays")

        # A token the API no longer accepts sends the page back to the login form.
        page.evaluate("sessionStorage.setItem('raftmq.api_token', 'stale-token-0123456789')")
        search(page, "clients", {"Client id starts with": client_id})
        expect(page.locator("#login")).to_be_visible()
        expect(page.locator("#login-error")).to_contain_text("log in again")
        print("401: back to the login form")
        browser.close()


if __name__ == "__main__":
    main()
