"""Data sets: generated toys, real data scikit-learn ships, images, sequences and CSV uploads.

`registry.DataRegistry` is the one entry point; each kind module declares its sets once.
"""
