"""What turns frames and verdicts into pages: the Markdown of every table (``markdown``, ``claims_page``,
``headlines``, ``page_parts``), its figures (``plots``), and a whole tables folder written at once (``report``)."""
