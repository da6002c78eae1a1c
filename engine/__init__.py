"""The stream processor: event decoding, windowing, monitors and alert evaluation.

Not built yet; see the engine issue. Only the package exists so that the distribution
layout is final from the start.
"""
