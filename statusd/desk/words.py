"""The desk page's own words in fr, en and sv (the messages themselves come from staff and presets)."""

from __future__ import annotations

WORDS: dict[str, dict[str, str]] = {
    "title": {"fr": "Accueil — statut", "en": "Desk — status", "sv": "Disk — status"},
    "login": {"fr": "Se connecter", "en": "Log in", "sv": "Logga in"},
    "account": {"fr": "Compte", "en": "Account", "sv": "Konto"},
    "password": {"fr": "Mot de passe", "en": "Password", "sv": "Lösenord"},
    "logout": {"fr": "Se déconnecter", "en": "Log out", "sv": "Logga ut"},
    "now": {"fr": "En vigueur", "en": "In force now", "sv": "Gäller nu"},
    "level": {"fr": "Niveau", "en": "Level", "sv": "Nivå"},
    "open": {"fr": "Ouvert", "en": "Open", "sv": "Öppet"},
    "limited": {"fr": "Limité", "en": "Limited", "sv": "Begränsat"},
    "closed": {"fr": "Fermé", "en": "Closed", "sv": "Stängt"},
    "emergency": {"fr": "Urgence", "en": "Emergency", "sv": "Nödläge"},
    "what": {"fr": "Quoi", "en": "What", "sv": "Vad"},
    "whole_site": {"fr": "Tout le site", "en": "The whole site", "sv": "Hela platsen"},
    "preset": {"fr": "Message prêt", "en": "Preset", "sv": "Färdigt meddelande"},
    "use_preset": {"fr": "Utiliser", "en": "Use", "sv": "Använd"},
    "none": {"fr": "(aucun)", "en": "(none)", "sv": "(inget)"},
    "message": {"fr": "Message", "en": "Message", "sv": "Meddelande"},
    "from": {"fr": "À partir de", "en": "From", "sv": "Från"},
    "until": {"fr": "Jusqu'à", "en": "Until", "sv": "Till"},
    "time_hint": {"fr": "AAAA-MM-JJ HH:MM ou HH:MM, heure de", "en": "YYYY-MM-DD HH:MM or HH:MM, time in",
                  "sv": "ÅÅÅÅ-MM-DD TT:MM eller TT:MM, tid i"},
    "preview": {"fr": "Aperçu", "en": "Preview", "sv": "Förhandsgranska"},
    "send": {"fr": "Envoyer", "en": "Send", "sv": "Skicka"},
    "undo": {"fr": "Annuler cette mise à jour", "en": "Undo this update", "sv": "Ångra uppdateringen"},
    "last": {"fr": "Dernière mise à jour", "en": "Last update", "sv": "Senaste uppdateringen"},
    "by": {"fr": "par", "en": "by", "sv": "av"},
    "chars": {"fr": "caractères", "en": "characters", "sv": "tecken"},
    "no_limit": {"fr": "sans limite", "en": "no limit", "sv": "ingen gräns"},
    "not_sent": {"fr": "NON ENVOYÉ", "en": "NOT SENT", "sv": "SKICKAS INTE"},
    "nothing_new": {"fr": "Rien de nouveau à annoncer.", "en": "Nothing new to announce.",
                    "sv": "Inget nytt att meddela."},
    "refresh": {"fr": "Actualiser", "en": "Refresh", "sv": "Uppdatera"},
    "no_sites": {"fr": "Ce compte ne peut changer aucun site.", "en": "This account may change no site.",
                 "sv": "Det här kontot får inte ändra någon plats."},
    "pending": {"fr": "en attente", "en": "pending", "sv": "väntar"},
    "sending": {"fr": "envoi", "en": "sending", "sv": "skickas"},
    "sent": {"fr": "envoyé", "en": "sent", "sv": "skickat"},
    "failed": {"fr": "échec", "en": "failed", "sv": "misslyckades"},
    "cancelled": {"fr": "annulé", "en": "cancelled", "sv": "avbrutet"},
    "superseded": {"fr": "remplacé", "en": "superseded", "sv": "ersatt"},
    "taken_back": {"fr": "annulée par", "en": "taken back by", "sv": "ångrad av"},
    "see_post": {"fr": "voir", "en": "see the post", "sv": "visa inlägget"},
    "enrol": {"fr": "Choisir votre mot de passe", "en": "Choose your password", "sv": "Välj ditt lösenord"},
    "enrolled": {"fr": "Mot de passe enregistré ; connectez-vous.", "en": "Password saved; log in.",
                 "sv": "Lösenordet är sparat; logga in."},
    "falls_back": {"fr": "Pas de texte dans sa langue, repli", "en": "No text in its language, falls back",
                   "sv": "Ingen text på dess språk, reserv"},
    "language": {"fr": "Langue", "en": "Language", "sv": "Språk"},
}


def word(key: str, lang: str) -> str:
    entry = WORDS[key]
    return entry.get(lang) or entry["en"]
