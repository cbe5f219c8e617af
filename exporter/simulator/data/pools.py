"""Word pools for generated data: deliberately awkward text (non-ASCII, ``&``, ``<``, empty strings).

Real Webex sites hold Chinese meeting names, accented attendee names and free text typed by users;
the exporter must carry all of it unchanged, so the simulator serves plenty of it.
"""

from __future__ import annotations

__all__ = [
    "PEOPLE",
    "CITIES",
    "COMPANIES",
    "TITLES",
    "MEETING_NAMES",
    "SERIES_NAMES",
    "TRAINING_NAMES",
    "EVENT_NAMES",
    "SUPPORT_NAMES",
    "CLIENT_AGENTS",
    "DOMAINS",
    "REG_QUESTIONS",
    "REG_ANSWERS",
    "LEAD_SOURCES",
    "TRACKING_CODES",
    "ASSIST_REQUESTS",
    "ASSIST_CONFIRMS",
    "DRIFT_ELEMENTS",
]

#: (first, last, ascii first, ascii last): display names and the ASCII handles used in e-mails.
PEOPLE = (
    ("Zoë", "Müller", "zoe", "mueller"),
    ("Søren", "Ærø", "soren", "aero"),
    ("美玲", "陳", "meiling", "chen"),
    ("健", "佐藤", "ken", "sato"),
    ("Анна", "Иванова", "anna", "ivanova"),
    ("José", "Núñez", "jose", "nunez"),
    ("François", "L'Écuyer", "francois", "lecuyer"),
    ("Łukasz", "Wróbel", "lukasz", "wrobel"),
    ("Ólafur", "Þórsson", "olafur", "thorsson"),
    ("Nguyễn", "Văn An", "an", "nguyen"),
    ("Aoife", "O'Brien", "aoife", "obrien"),
    ("Mohammed", "Al-Farsi", "mohammed", "alfarsi"),
    ("Priya", "Ramanathan", "priya", "ramanathan"),
    ("Björn", "Ångström", "bjorn", "angstrom"),
    ("Dean", "Smith", "dean", "smith"),
    ("Molly", "Jones", "molly", "jones"),
    ("Wei", "张", "wei", "zhang"),
    ("Chloé", "Dubois", "chloe", "dubois"),
    ("Kwame", "Mensah", "kwame", "mensah"),
    ("Ayşe", "Yılmaz", "ayse", "yilmaz"),
)

#: (city, state, country, zip); some fields deliberately empty.
CITIES = (
    ("Ærøskøbing", "", "Denmark", "5970"),
    ("Zürich", "ZH", "Switzerland", "8001"),
    ("北京", "北京", "China", "100000"),
    ("São Paulo", "SP", "Brazil", "01000-000"),
    ("San Jose", "CA", "United States", "95134"),
    ("Москва", "", "Russia", "101000"),
    ("Reykjavík", "", "Iceland", "101"),
    ("Kraków", "małopolskie", "Poland", "30-001"),
    ("東京", "東京都", "Japan", "100-0001"),
    ("Montréal", "QC", "Canada", "H2X 1Y4"),
    ("Bengaluru", "KA", "India", "560001"),
    ("", "", "", ""),
)

COMPANIES = ("Acme & Co", "Müller GmbH", "株式会社サンプル", "<Unknown>", "", "Ærø Shipping A/S", "Initech",
             "Smith & Wesson <Training>", "Globex", "台灣積體電路")
TITLES = ("Engineer", "VP, Sales & Marketing", "", "Directeur Général", "研究員", "Intern <temp>")

MEETING_NAMES = (
    "團隊會議", "Q3 Review & Planning", "R&D <internal> review", "Zoë's 1:1", "Ærøskøbing standup",
    "Планёрка", "会议 — 周报", "Café strategy", "Customer call: Müller GmbH", "🚀 Launch prep",
    "Interview – Søren", "All hands", "Sprint retro", "Budget 2027 <draft>", "",
)
SERIES_NAMES = ("Weekly sync 團隊會議", "Daily standup", "Board & advisors", "Office hours", "Lunch & learn",
                "Planning <recurring>", "Retrospektive", "週次レビュー")
TRAINING_NAMES = ("Onboarding 101", "Python für Anfänger", "安全培訓", "Excel <advanced> & macros", "Sales bootcamp")
EVENT_NAMES = ("Webinar: Ærøskøbing tourism", "Product launch 🚀", "Town hall & Q&A", "產品發佈會", "Partner summit")
SUPPORT_NAMES = ("Support ticket #{n}", "Remote assist — printer", "VPN <urgent>", "Installation & setup")

CLIENT_AGENTS = ("WINDOWS,IE", "MAC,SAFARI", "WEBEX APP,WINDOWS", "Android,Chrome", "iOS", "Linux,Firefox", "")
DOMAINS = ("example.com", "example.org", "beispiel.de", "example.net")

REG_QUESTIONS = ("Company size?", "How did you hear about us?", "Dietary needs & allergies", "您的職稱?")
REG_ANSWERS = ("50 & more", "Friend <referral>", "", "Végétarien", "經理")
LEAD_SOURCES = ("web", "email", "partner & co", "")
TRACKING_CODES = ("Sales", "R&D", "Support <EMEA>", "市場部", "")
ASSIST_REQUESTS = ("None", "Dry Run", "Consult", "Live Event Support", "Audio Streaming", "Video")
ASSIST_CONFIRMS = ("Pending", "Confirmed", "Cancelled")

#: Elements a newer server release might add (schema drift): name -> values to pick from.
DRIFT_ELEMENTS = (
    ("participantID", ("p-1001", "p-2002", "p-3003")),
    ("dataCenter", ("SJC", "AMS", "NRT")),
    ("isE2EE", ("false", "true")),
    ("webinarRegion", ("EMEA & APAC", "Américas")),
)
