"""The bilingual site: marketing, blog, docs, pricing, playground, console, payments (``website.blueprints.register``)."""
