"""Browser tests: the annotation app driven in headless Chromium with Playwright."""
