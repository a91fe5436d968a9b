"""Spanish e-mail and calendar texts (the keys and placeholders match ``mail_text_en``)."""

from __future__ import annotations

from typing import Final

TEXTS: Final[dict[str, str]] = {
    # ------------------------------------------------------------------ dates and amounts
    "date.long": "{weekday} {day} de {month} de {year}, {time}",
    "date.short": "{weekday_short} {day} {month_short} {year}, {time}",
    "date.zone": "{weekday} {day} de {month} de {year}, {time} {zone}",
    "date.day": "{weekday}, {day} de {month} de {year}",
    "date.time": "{time}",
    "date.span": "{start} a {end} ({timezone}, {utc_offset})",
    "minutes.one": "{count} minuto",
    "minutes.other": "{count} minutos",
    **{
        f"weekday.{i}": name
        for i, name in enumerate(
            ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"]
        )
    },
    **{
        f"weekday_short.{i}": name
        for i, name in enumerate(["lun", "mar", "mié", "jue", "vie", "sáb", "dom"])
    },
    **{
        f"month.{i}": name
        for i, name in enumerate(
            [
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
            ],
            start=1,
        )
    },
    **{
        f"month_short.{i}": name
        for i, name in enumerate(
            ["ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic"],
            start=1,
        )
    },
    # ------------------------------------------------------------------ accounts
    "verify_email.subject": "Confirme su dirección de correo electrónico",
    "verify_email.body": (
        "Hola, {name}:\n\nconfirme su dirección de correo para las visitas por video abriendo\n"
        "{link}\n\nEl enlace es válido durante 3 días. Si usted no se registró, ignore este "
        "correo.\n"
    ),
    "signup_existing.subject": "Alguien intentó registrarse con su dirección de correo",
    "signup_existing.body": (
        "Hola, {name}:\n\nalguien (quizás usted) intentó crear una cuenta de visitas por video "
        "con esta dirección de correo, que ya tiene una. No se cambió nada.\n\n"
        "Para iniciar sesión: {signin_link}\n¿Olvidó su contraseña? {reset_link}\n\n"
        "Si no fue usted, ignore este correo.\n"
    ),
    "password_reset.subject": "Restablezca su contraseña",
    "password_reset.body": (
        "Hola, {name}:\n\npara elegir una contraseña nueva abra\n{link}\n\n"
        "El enlace es válido durante 1 hora. Si usted no lo pidió, ignore este correo.\n"
    ),
    "account_locked.subject": "Su cuenta se bloqueó tras varios intentos fallidos",
    "account_locked.body": (
        "Hola, {name}:\n\ntras {failures} contraseñas incorrectas "
        "seguidas, el inicio de sesión en su cuenta de visitas por video está bloqueado durante "
        "{minutes} minutos. Cualquiera que conozca su dirección de correo puede causarlo.\n\n"
        "Si fue usted, o quiere iniciar sesión ahora, quite el bloqueo aquí:\n"
        "{link}\n\n"
        "Si usted no intentó iniciar sesión, lo hizo otra persona: mantenga su contraseña en "
        "secreto y cámbiela si cree que la conocen.\n"
    ),
    "id_verified.subject": "Su identificación fue verificada",
    "id_verified.body": (
        "Hola, {name}:\n\nsu identificación fue verificada. Ya pueden aprobarle para visitas "
        "por video.\n"
    ),
    "id_rejected.subject": "No se pudo verificar su identificación",
    "id_rejected.body": (
        "Hola, {name}:\n\nno se pudo verificar su identificación.\n\nMotivo: {reason}\n\n"
        "Suba una foto nueva de su identificación.\n"
    ),
    # ------------------------------------------------------------------ approvals and bans
    "approval_requested.subject": "Nueva solicitud de aprobación de visitante en {facility}",
    "approval_requested.body": (
        "{visitor}{professional} pide ser aprobado para visitar a {person} "
        "({booking_number}), relación: "
        "{relationship}.\n\nRevise la solicitud en la cola de aprobaciones:\n"
        "{link}\n"
    ),
    "professional.attorney": " (abogado)",
    "professional.clergy": " (clérigo)",
    "approval_approved.subject": "Está aprobado para visitar a {person}",
    "approval_approved.body": (
        "Hola, {name}:\n\n"
        "ya está aprobado para visitar a {person} en {facility}. Puede reservar visitas.{reason}\n"
    ),
    "approval_denied.subject": "Su solicitud para visitar a {person} fue rechazada",
    "approval_denied.body": (
        "Hola, {name}:\n\nsu solicitud para visitar a {person} en {facility} fue rechazada."
        "{reason}\n"
    ),
    "approval.reason": "\n\nMotivo: {reason}",
    "approval_revoked.subject": "Se retiró su aprobación para visitar a {person}",
    "approval_revoked.body": (
        "Hola, {name}:\n\nya no está aprobado para visitar a {person} en "
        "{facility}.\n\nMotivo: {reason}\n"
    ),
    "visitor_ban.subject": "No puede visitar en {facility} hasta el {until}",
    "visitor_ban.body": (
        "Hola, {name}:\n\nno puede participar en visitas en {facility} "
        "hasta el {until}.\n\nMotivo: {reason}\n"
    ),
    "visitor_ban_lifted.subject": "Puede volver a visitar en {facility}",
    "visitor_ban_lifted.body": (
        "Hola, {name}:\n\nse levantó su prohibición de visitas en {facility}.\n"
    ),
    # ------------------------------------------------------------------ visits
    "notice.monitored": (
        "Esta visita es supervisada y grabada por el centro. El personal puede revisar todo lo "
        "que se diga y se muestre."
    ),
    "notice.privileged": (
        "Esta es una visita privilegiada (abogado o clérigo): no se supervisa ni se graba."
    ),
    "join_window": "se abre {minutes} minutos antes de la visita",
    "visit_booked.subject": "Visita por video reservada: {when}",
    "visit_booked.body": (
        "Hola, {name}:\n\n"
        "su visita por video con {person} está reservada{changed}.\n\n"
        "Cuándo: {span}\n"
        "Centro: {facility}\n"
        "Número de visita: {visit_id}\n\n"
        "Enlace para unirse ({window}):\n{link}\n\n"
        "No comparta este enlace: solo sirve para esta visita, y si pide uno nuevo este deja "
        "de funcionar.\n\n"
        "{notice}\n"
    ),
    "visit_booked.replaces": " (reemplaza la visita {visit_id}, que queda cancelada)",
    "visit_booked.moved": ".\n\nEl centro cambió su visita. Motivo: {reason}",
    "visit_booked.minors": "\nMenores que le acompañan: {names}.\n",
    "visit_reminder.subject": "Recordatorio: visita por video con {person} a las {time}",
    "visit_reminder.body": (
        "Hola, {name}:\n\n"
        "Le recordamos su visita por video con {person} en {facility}\n"
        "el {when}, {start}-{end} ({zone}).\n\n"
        "Únase a la visita con este enlace (se abre {minutes} minutos antes "
        "del inicio):\n{link}\n\n"
        "Este enlace reemplaza cualquier enlace anterior para esta visita. No lo comparta.\n"
        "Si no puede asistir, cancele la visita para que otra persona pueda usar ese horario.\n"
    ),
    "visit_cancelled.subject": "Visita por video cancelada: {when}",
    "visit_cancelled.body": (
        "Hola, {name}:\n\n"
        "el centro canceló su visita por video con {person} del "
        "{span}.\n\nMotivo: {reason}\n\n"
        "Esta visita no cuenta para su límite semanal de visitas. Puede reservar otro "
        "horario en la página de visitas.\n"
    ),
    "visits_cancelled.subject": "Visita por video cancelada: {when}",
    "visits_cancelled.body": (
        "Hola, {name}:\n\nsu visita por video con {person} "
        "en {facility} del {when} fue cancelada.\n\n"
        "Motivo: {reason}\n{series_note}"
    ),
    "visits_cancelled.series_note": (
        "\nEsta visita la reservó su visita semanal fija. Solo se cancela esta visita: "
        "la visita semanal sigue, y su próxima visita se reserva cuando se abra su plazo "
        "de reserva.\n"
    ),
    "visit_credit.subject": "Nueva reserva gratuita para su visita por video del {when}",
    "visit_credit.body": (
        "Hola, {name}:\n\n"
        "su visita por video con {person} del {span} "
        "no salió como debía.\n\n"
        "Motivo: {reason}\n{lost}\n"
        "Puede reservar una visita de reposición gratis: abra esta visita (número de visita "
        "{visit_id}) en la página de visitas de {url} y elija "
        '"Volver a reservar". La visita de reposición no cuenta para su límite semanal.\n'
    ),
    "visit_credit.lost": "Tiempo perdido: {lost}.\n",
    # ------------------------------------------------------------------ standing weekly visits
    "series.every": "cada {weekday} a las {time}",
    "series_skipped.subject": "Visita semanal no reservada: {when}",
    "series_skipped.body": (
        "Hola, {name}:\n\n"
        "no se pudo reservar su visita semanal fija con {person} ({every}) "
        "para el {when}.\n\nMotivo: {reason}\n\n{offers}\n"
        "Su visita semanal sigue: la próxima se reserva cuando se abra su plazo de "
        "reserva. Sus visitas semanales: {series_link}\n"
    ),
    "series_skipped.offers": (
        "Las horas libres más cercanas:\n{times}\n"
        "Reserve una de ellas en la página de reservas: {book_link}\n"
    ),
    "series_skipped.no_offers": "No hay ninguna hora libre cercana.\n",
    "series_ended.subject": "Terminó la visita semanal con {person}",
    "series_ended.body": (
        "Hola, {name}:\n\n"
        "su visita semanal fija con {person} ({every}) terminó "
        "y ya no reserva más visitas.\n\nMotivo: {reason}\n\n"
        "Sus visitas semanales: {series_link}\n"
    ),
    # ------------------------------------------------------------------ calendar files
    "ics.summary": "Visita por video con {person}",
    "ics.description": (
        "Visita por video con {person} en {facility}.\n"
        "Hora local: {span}.\n"
        "Número de visita: {visit_id}.\n{notice}"
    ),
    "ics.join": "\nEnlace para unirse ({window}): {link}",
    "ics.location": "Visita por video en línea - {facility}",
    # ------------------------------------------------------------------ reasons the server writes
    "reason.ban": "no puede visitar en {facility} hasta el {until}: {reason}",
    "reason.approval_withdrawn": "se retiró su aprobación para visitar a {person}: {reason}",
    "reason.moved_unit": "{first_name} pasó a otra unidad; reserve un horario nuevo",
    "reason.released": "{person} ya no está bajo custodia aquí",
    "reason.transferred": "{person} fue trasladado a otro centro",
    "reason.suspended": "las visitas con {person} están suspendidas hasta el {until}",
    "reason.interrupted_for": "la llamada se interrumpió durante {lost} en total",
    "reason.the visit failed": "la visita falló",
    "reason.kiosk offline": "el quiosco estaba desconectado",
    "reason.interrupted, not resumed": "se interrumpió y no se reanudó",
    "reason.both joined but never connected together": (
        "ambos se unieron pero nunca llegaron a conectarse"
    ),
    # why a standing weekly visit was not booked or ended (the booking code's messages)
    "reason.person_weekly_limit": "esta persona ya tiene {count} visitas esa semana",
    "reason.visitor_weekly_limit": "usted ya tiene {count} visitas esa semana",
    "reason.booking_window": (
        "las visitas se reservan con entre {min_minutes} minutos y {max_days} días de antelación"
    ),
    "reason.this person cannot have visits at the moment": (
        "esta persona no puede tener visitas por ahora"
    ),
    "reason.visiting is suspended for this person at that time": (
        "las visitas de esta persona están suspendidas a esa hora"
    ),
    "reason.visits are suspended at that time": "las visitas están suspendidas a esa hora",
    "reason.this person has another visit at that time": (
        "esta persona tiene otra visita a esa hora"
    ),
    "reason.you have another visit at that time": "usted tiene otra visita a esa hora",
    "reason.that slot has just been taken; pick another one": (
        "ese horario se acaba de ocupar; elija otro"
    ),
    "reason.you may not visit at this facility at that time": (
        "usted no puede visitar este centro a esa hora"
    ),
    "reason.that time is not a visit slot; pick one from the availability list": (
        "esa hora no es un horario de visita; elija uno de la lista de horarios libres"
    ),
    "reason.the clocks change at that time that day": "ese día hay cambio de hora justo a esa hora",
    "reason.confirm your e-mail address and have your ID checked before booking": (
        "confirme su dirección de correo y haga verificar su identificación antes de reservar"
    ),
    "reason.you are not on this person's approved visitor list": (
        "usted no está en la lista de visitantes aprobados de esta persona"
    ),
    "reason.the person is no longer here": "la persona ya no está aquí",
}
