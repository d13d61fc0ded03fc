"""Every sentence of the preference page, in English and Spanish.

Plain words, short sentences; stopping is offered as plainly as any other choice.
"""

from __future__ import annotations

from typing import Final

WORDING: Final[dict[str, dict[str, str]]] = {
    "en": {
        "title": "Your contact choices",
        "intro": "You can tell us how, when or whether we contact you. Each button saves "
        "one choice straight away.",
        "about_heading": "Who is contacting you",
        "creditor": "Creditor",
        "reference": "Reference",
        "balance": "Balance we have on record",
        "about_unknown": "We could not look up the account details just now. Your choices "
        "below still work.",
        "collector_notice": "This is a communication from a debt collector.",
        "stop_heading": "Stop messages",
        "stop_texts": "Stop text messages",
        "stop_emails": "Stop emails",
        "stop_all": "Stop all messages",
        "stop_help": "We stop at once. You do not need to give a reason.",
        "help_heading": "Ask for help",
        "hardship": "I'm going through a hard time",
        "hardship_help": "We pause all messages for 30 days and a person will get in "
        "touch to talk about options.",
        "dispute": "I dispute this debt",
        "dispute_help": "We stop collection messages while the debt is reviewed.",
        "prefs_heading": "When and how we contact you",
        "channel": "Preferred way to contact you",
        "channel_any": "No preference",
        "channel_sms": "Text message",
        "channel_email": "Email",
        "days": "Days we may contact you",
        "days_help": "Leave all unticked for no preference.",
        "earliest": "Not before",
        "latest": "Not after",
        "time_any": "No preference",
        "times_help": "Times are your local time, within 8 am to 9 pm.",
        "language": "Language",
        "save_prefs": "Save these preferences",
        "status_heading": "What is in force now",
        "status_none": "No stops or pauses are in force.",
        "status_unknown": "We could not check this just now; your choices below still work.",
        "status_texts_stopped": "Text messages are stopped.",
        "status_emails_stopped": "Emails are stopped.",
        "status_all_stopped": "All messages are stopped.",
        "status_hardship": "Messages are paused until {until} (hardship).",
        "status_dispute": "Collection messages are on hold while your dispute is reviewed.",
        "done_title": "Saved",
        "done_stop-texts": "Done: we will send no more text messages about this account.",
        "done_stop-emails": "Done: we will send no more emails about this account.",
        "done_stop-all": "Done: we will send no more messages about this account.",
        "done_hardship": "Done: messages are paused until {until}. A person will contact "
        "you to talk about options.",
        "done_dispute": "Done: we have recorded that you dispute this debt. Collection "
        "messages stop while it is reviewed.",
        "done_preferences": "Done: your preferences are saved.",
        "back": "Back to your contact choices",
        "invalid_title": "This link cannot be used",
        "expired": "This link has expired.",
        "forged": "This link is not valid.",
        "invalid_next": "Nothing has been changed. To stop text messages, reply STOP to "
        "any text from us. To stop emails, use the unsubscribe link in any email from us. "
        "Each new message from us also has a fresh link to this page.",
        "contact": "You can also write to {sender}, or call us on the number in your letter.",
        "error_title": "Not saved",
        "error_unavailable": "We could not save your choice just now, so nothing has "
        "changed. Please try again in a minute, or reply STOP to any text from us.",
        "error_form": "Something in the form could not be used ({detail}). Nothing has changed.",
        "error_csrf": "This form has expired or did not come from this page. Nothing "
        "has changed. Please open the page again and choose once more.",
        "too_many": "Too many requests. Please wait a minute and try again.",
        "weekday_1": "Monday",
        "weekday_2": "Tuesday",
        "weekday_3": "Wednesday",
        "weekday_4": "Thursday",
        "weekday_5": "Friday",
        "weekday_6": "Saturday",
        "weekday_7": "Sunday",
        "lang_en": "English",
        "lang_es": "Español",
        "other_language": "Ver esta página en español",
    },
    "es": {
        "title": "Sus opciones de contacto",
        "intro": "Puede decirnos cómo, cuándo o si debemos contactarle. Cada botón guarda "
        "una opción al instante.",
        "about_heading": "Quién le contacta",
        "creditor": "Acreedor",
        "reference": "Referencia",
        "balance": "Saldo que tenemos registrado",
        "about_unknown": "No pudimos consultar los datos de la cuenta en este momento. Sus "
        "opciones de abajo siguen funcionando.",
        "collector_notice": "Esta es una comunicación de un cobrador de deudas.",
        "stop_heading": "Dejar de recibir mensajes",
        "stop_texts": "Dejar de recibir mensajes de texto",
        "stop_emails": "Dejar de recibir correos electrónicos",
        "stop_all": "Dejar de recibir todos los mensajes",
        "stop_help": "Paramos de inmediato. No tiene que dar ningún motivo.",
        "help_heading": "Pedir ayuda",
        "hardship": "Estoy pasando por un momento difícil",
        "hardship_help": "Pausamos todos los mensajes durante 30 días y una persona se "
        "pondrá en contacto para hablar de opciones.",
        "dispute": "Disputo esta deuda",
        "dispute_help": "Dejamos de enviar mensajes de cobro mientras se revisa la deuda.",
        "prefs_heading": "Cuándo y cómo le contactamos",
        "channel": "Forma preferida de contacto",
        "channel_any": "Sin preferencia",
        "channel_sms": "Mensaje de texto",
        "channel_email": "Correo electrónico",
        "days": "Días en que podemos contactarle",
        "days_help": "Deje todos sin marcar si no tiene preferencia.",
        "earliest": "No antes de",
        "latest": "No después de",
        "time_any": "Sin preferencia",
        "times_help": "Horas locales, entre las 8 y las 21 h.",
        "language": "Idioma",
        "save_prefs": "Guardar estas preferencias",
        "status_heading": "Qué está vigente ahora",
        "status_none": "No hay paradas ni pausas vigentes.",
        "status_unknown": "No pudimos comprobarlo en este momento; sus opciones de abajo "
        "siguen funcionando.",
        "status_texts_stopped": "Los mensajes de texto están detenidos.",
        "status_emails_stopped": "Los correos electrónicos están detenidos.",
        "status_all_stopped": "Todos los mensajes están detenidos.",
        "status_hardship": "Los mensajes están en pausa hasta el {until} (dificultades).",
        "status_dispute": "Los mensajes de cobro están en espera mientras se revisa su disputa.",
        "done_title": "Guardado",
        "done_stop-texts": "Listo: no enviaremos más mensajes de texto sobre esta cuenta.",
        "done_stop-emails": "Listo: no enviaremos más correos electrónicos sobre esta cuenta.",
        "done_stop-all": "Listo: no enviaremos más mensajes sobre esta cuenta.",
        "done_hardship": "Listo: los mensajes están en pausa hasta el {until}. Una persona "
        "se pondrá en contacto para hablar de opciones.",
        "done_dispute": "Listo: hemos registrado que disputa esta deuda. Los mensajes de "
        "cobro se detienen mientras se revisa.",
        "done_preferences": "Listo: sus preferencias están guardadas.",
        "back": "Volver a sus opciones de contacto",
        "invalid_title": "Este enlace no se puede usar",
        "expired": "Este enlace ha caducado.",
        "forged": "Este enlace no es válido.",
        "invalid_next": "No se ha cambiado nada. Para dejar de recibir mensajes de texto, "
        "responda STOP a cualquier mensaje nuestro. Para dejar de recibir correos, use el "
        "enlace para cancelar la suscripción de cualquier correo nuestro. Cada mensaje "
        "nuevo trae también un enlace nuevo a esta página.",
        "contact": "También puede escribir a {sender}, o llamarnos al número de su carta.",
        "error_title": "No guardado",
        "error_unavailable": "No pudimos guardar su opción en este momento, así que no ha "
        "cambiado nada. Inténtelo de nuevo en un minuto, o responda STOP a cualquier "
        "mensaje nuestro.",
        "error_form": "Algo del formulario no se pudo usar ({detail}). No ha cambiado nada.",
        "error_csrf": "Este formulario ha caducado o no viene de esta página. No ha "
        "cambiado nada. Abra la página de nuevo y elija otra vez.",
        "too_many": "Demasiadas solicitudes. Espere un minuto e inténtelo de nuevo.",
        "weekday_1": "Lunes",
        "weekday_2": "Martes",
        "weekday_3": "Miércoles",
        "weekday_4": "Jueves",
        "weekday_5": "Viernes",
        "weekday_6": "Sábado",
        "weekday_7": "Domingo",
        "lang_en": "English",
        "lang_es": "Español",
        "other_language": "View this page in English",
    },
}

MONTHS: Final[dict[str, tuple[str, ...]]] = {
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    "es": (
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ),
}


def long_date(language: str, year: int, month: int, day: int) -> str:
    """A date in words: "24 December 2026", "24 de diciembre de 2026"."""
    name = MONTHS[language][month - 1]
    return f"{day} de {name} de {year}" if language == "es" else f"{day} {name} {year}"
