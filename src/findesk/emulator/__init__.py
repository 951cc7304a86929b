"""The Fin emulator: Intercom-side doubles to develop and test findesk against (design part 7).

So far: the AI Content API (``content_api.create_content_api``), the Fin Content Library that
findesk publishes to and that the emulated Fin will answer from (``ContentStore.pages()``).
"""
