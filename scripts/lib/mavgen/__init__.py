"""mavgen: deterministic, realistic multimodal datasets for testing mav.

Standard library only. Everything derives from an integer seed through
random.Random instances seeded with strings (hashed with SHA-512 by Python,
so results do not depend on PYTHONHASHSEED, the interpreter build or the
order in which files are produced).
"""
