"""Accounts, API tokens, projects and the roles held in them, as a service decided for one
caller (``service``): what ``cairn users``, ``cairn tokens`` and ``cairn projects`` use
embedded, and what a server runs for each request."""
