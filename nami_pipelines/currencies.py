"""ISO 4217 currency codes, so a typo in a revenue setting or a rates file fails at load instead
of leaving every transaction pending for a currency that does not exist.

The codes in use (ISO 4217 list one, funds and precious metals included) and the few withdrawn
recently enough that stores still report them for older purchases. Kept here, not taken from a
package: the list changes a few times a decade, and one line added here is the whole upkeep.
"""

from typing import Final

_IN_USE: Final = """
AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP
BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB
EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD
JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP
MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR
RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND
TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG XAU XBA XBB
XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XTS XUA XXX YER ZAR ZMW ZWG
"""
# Withdrawn since 2021; purchases made before the change still carry them.
_RECENTLY_WITHDRAWN: Final = "ANG CUC HRK SLL ZWL"

ISO_4217_CODES: Final = frozenset((_IN_USE + _RECENTLY_WITHDRAWN).split())


def is_currency_code(value: str) -> bool:
    """True for an ISO 4217 code as written in the standard (three capital letters)."""
    return value in ISO_4217_CODES
