"""Staff phones under seizure: the PIN lock and the case views that disappear.

No Telegram types here: ``pin`` hashes PINs, ``lock`` decides what a staff
member's next message may do, ``views`` keeps and wipes the messages that
carry case content. ``handlers/staff/gate.py`` enforces it, in one place.
"""
