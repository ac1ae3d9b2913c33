"""Hostile input and hostile neighbours (issue 12): tables of bad values and property tests."""
