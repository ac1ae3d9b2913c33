"""The desk: personal accounts, tokens and sessions, the desk API and the desk pages.

Staff flip the status from anywhere with their own account; each request is
checked against the person's role and sites, and the history says who did it.
"""
