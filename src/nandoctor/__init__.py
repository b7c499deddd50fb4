"""nandoctor: why did my training go NaN, and what exactly do I change?"""

__version__ = "0.1.0"
