"""English e-mail and calendar texts (the keys and placeholders match ``mail_text_es``)."""

from __future__ import annotations

from typing import Final

TEXTS: Final[dict[str, str]] = {
    # ------------------------------------------------------------------ dates and amounts
    "date.long": "{weekday} {day2} {month} {year}, {time}",
    "date.short": "{weekday_short} {day2} {month_short} {year} {time}",
    "date.zone": "{weekday} {day2} {month} {year}, {time} {zone}",
    "date.day": "{weekday}, {month} {day}, {year}",
    "date.time": "{time}",
    "date.span": "{start} to {end} ({timezone}, {utc_offset})",
    "minutes.one": "{count} minute",
    "minutes.other": "{count} minutes",
    **{
        f"weekday.{i}": name
        for i, name in enumerate(
            ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
        )
    },
    **{
        f"weekday_short.{i}": name
        for i, name in enumerate(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])
    },
    **{
        f"month.{i}": name
        for i, name in enumerate(
            [
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
            ],
            start=1,
        )
    },
    **{
        f"month_short.{i}": name
        for i, name in enumerate(
            ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
            start=1,
        )
    },
    # ------------------------------------------------------------------ accounts
    "verify_email.subject": "Confirm your e-mail address",
    "verify_email.body": (
        "Hello {name},\n\nconfirm your e-mail address for video visits by opening\n"
        "{link}\n\nThe link is valid for 3 days. If you did not sign up, ignore this e-mail.\n"
    ),
    "signup_existing.subject": "Someone tried to sign up with your e-mail address",
    "signup_existing.body": (
        "Hello {name},\n\nsomeone (maybe you) tried to create a video-visit account "
        "with this e-mail address, which already has one. Nothing was changed.\n\n"
        "To sign in: {signin_link}\nForgot your password? {reset_link}\n\n"
        "If it was not you, ignore this e-mail.\n"
    ),
    "password_reset.subject": "Reset your password",
    "password_reset.body": (
        "Hello {name},\n\nto choose a new password open\n{link}\n\n"
        "The link is valid for 1 hour. If you did not ask for this, ignore this e-mail.\n"
    ),
    "account_locked.subject": "Your account was locked after failed sign-ins",
    "account_locked.body": (
        "Hello {name},\n\nafter {failures} wrong passwords "
        "in a row, sign-in to your video-visit account is locked for {minutes} minutes. "
        "Anyone who knows your e-mail address can cause this.\n\n"
        "If it was you, or you want to sign in now, lift the lock here:\n"
        "{link}\n\n"
        "If you did not try to sign in, someone else did: keep your password secret, and "
        "change it if you think they know it.\n"
    ),
    "id_verified.subject": "Your ID was verified",
    "id_verified.body": (
        "Hello {name},\n\nyour ID was verified. You can now be approved for video visits.\n"
    ),
    "id_rejected.subject": "Your ID could not be verified",
    "id_rejected.body": (
        "Hello {name},\n\nyour ID could not be verified.\n\nReason: {reason}\n\n"
        "Please upload a new photo of your ID.\n"
    ),
    # ------------------------------------------------------------------ approvals and bans
    "approval_requested.subject": "New visitor approval request at {facility}",
    "approval_requested.body": (
        "{visitor}{professional} asks to be approved to visit {person} "
        "({booking_number}), relationship: "
        "{relationship}.\n\nReview the request in the approval queue:\n"
        "{link}\n"
    ),
    "professional.attorney": " (attorney)",
    "professional.clergy": " (clergy)",
    "approval_approved.subject": "You are approved to visit {person}",
    "approval_approved.body": (
        "Hello {name},\n\n"
        "you are now approved to visit {person} at {facility}. You can book visits.{reason}\n"
    ),
    "approval_denied.subject": "Your request to visit {person} was denied",
    "approval_denied.body": (
        "Hello {name},\n\nyour request to visit {person} at {facility} was denied.{reason}\n"
    ),
    "approval.reason": "\n\nReason: {reason}",
    "approval_revoked.subject": "Your approval to visit {person} was withdrawn",
    "approval_revoked.body": (
        "Hello {name},\n\nyou are no longer approved to visit {person} at "
        "{facility}.\n\nReason: {reason}\n"
    ),
    "visitor_ban.subject": "You may not visit at {facility} until {until}",
    "visitor_ban.body": (
        "Hello {name},\n\nyou may not take part in visits at {facility} "
        "until {until}.\n\nReason: {reason}\n"
    ),
    "visitor_ban_lifted.subject": "You may visit at {facility} again",
    "visitor_ban_lifted.body": "Hello {name},\n\nyour ban from visits at {facility} was lifted.\n",
    # ------------------------------------------------------------------ visits
    "notice.monitored": (
        "This visit is monitored and recorded by the facility. Everything said and shown can be "
        "reviewed by staff."
    ),
    "notice.privileged": (
        "This is a privileged (attorney or clergy) visit: it is not monitored or recorded."
    ),
    "join_window": "it opens {minutes} minutes before the visit",
    "visit_booked.subject": "Video visit booked: {when}",
    "visit_booked.body": (
        "Hello {name},\n\n"
        "your video visit with {person} is booked{changed}.\n\n"
        "When: {span}\n"
        "Facility: {facility}\n"
        "Visit number: {visit_id}\n\n"
        "Join link ({window}):\n{link}\n\n"
        "Keep this link to yourself: it works for this visit only, and asking for a new one "
        "makes this one stop working.\n\n"
        "{notice}\n"
    ),
    "visit_booked.replaces": " (it replaces visit {visit_id}, which is cancelled)",
    "visit_booked.moved": ".\n\nThe facility moved your visit. Reason: {reason}",
    "visit_booked.minors": "\nMinors joining you: {names}.\n",
    "visit_reminder.subject": "Reminder: video visit with {person} at {time}",
    "visit_reminder.body": (
        "Hello {name},\n\n"
        "This is a reminder of your video visit with {person} at {facility}\n"
        "on {when}, {start}-{end} ({zone}).\n\n"
        "Join the visit with this link (it opens {minutes} minutes before "
        "the start):\n{link}\n\n"
        "This link replaces any earlier join link for this visit. Do not share it.\n"
        "If you cannot attend, please cancel the visit so the time can go to someone else.\n"
    ),
    "visit_cancelled.subject": "Video visit cancelled: {when}",
    "visit_cancelled.body": (
        "Hello {name},\n\n"
        "the facility cancelled your video visit with {person} on "
        "{span}.\n\nReason: {reason}\n\n"
        "This visit does not count against your weekly visits. You can book another "
        "time on the visits page.\n"
    ),
    "visits_cancelled.subject": "Video visit cancelled: {when}",
    "visits_cancelled.body": (
        "Hello {name},\n\nyour video visit with {person} "
        "at {facility} on {when} has been cancelled.\n\n"
        "Reason: {reason}\n{series_note}"
    ),
    "visits_cancelled.series_note": (
        "\nThis visit was booked by your standing weekly visit. Only this visit is "
        "cancelled: the weekly visit goes on, and its next visit is booked when its "
        "booking window opens.\n"
    ),
    "visit_credit.subject": "Free rebooking for your video visit of {when}",
    "visit_credit.body": (
        "Hello {name},\n\n"
        "your video visit with {person} on {span} "
        "did not go as it should have.\n\n"
        "Reason: {reason}\n{lost}\n"
        "You can book a make-up visit for free: open this visit (visit number "
        "{visit_id}) on the visits page at {url} and choose "
        '"Rebook". The make-up visit does not count against your weekly visits.\n'
    ),
    "visit_credit.lost": "Time lost: {lost}.\n",
    # ------------------------------------------------------------------ standing weekly visits
    "series.every": "every {weekday} at {time}",
    "series_skipped.subject": "Weekly visit not booked: {when}",
    "series_skipped.body": (
        "Hello {name},\n\n"
        "your standing weekly visit with {person} ({every}) could "
        "not be booked for {when}.\n\nWhy: {reason}\n\n{offers}\n"
        "Your weekly visit itself continues: the next one is booked when its booking "
        "window opens. Your weekly visits: {series_link}\n"
    ),
    "series_skipped.offers": (
        "The nearest free times:\n{times}\nBook one of them on the booking page: {book_link}\n"
    ),
    "series_skipped.no_offers": "There is no free time near it.\n",
    "series_ended.subject": "Weekly visit with {person} ended",
    "series_ended.body": (
        "Hello {name},\n\n"
        "your standing weekly visit with {person} ({every}) has "
        "ended and books no more visits.\n\nWhy: {reason}\n\n"
        "Your weekly visits: {series_link}\n"
    ),
    # ------------------------------------------------------------------ calendar files
    "ics.summary": "Video visit with {person}",
    "ics.description": (
        "Video visit with {person} at {facility}.\n"
        "Local time: {span}.\n"
        "Visit number: {visit_id}.\n{notice}"
    ),
    "ics.join": "\nJoin link ({window}): {link}",
    "ics.location": "Online video visit - {facility}",
    # ------------------------------------------------------------------ reasons the server writes
    "reason.ban": "you may not visit at {facility} until {until}: {reason}",
    "reason.approval_withdrawn": "your approval to visit {person} was withdrawn: {reason}",
    "reason.moved_unit": "{first_name} moved to another housing unit; please book a new time",
    "reason.released": "{person} is no longer in custody here",
    "reason.transferred": "{person} was transferred to another facility",
    "reason.suspended": "visiting with {person} is suspended until {until}",
    "reason.interrupted_for": "the call was interrupted for {lost} in all",
    "reason.the visit failed": "the visit failed",
    "reason.kiosk offline": "kiosk offline",
    "reason.interrupted, not resumed": "interrupted, not resumed",
    "reason.both joined but never connected together": "both joined but never connected together",
    # why a standing weekly visit was not booked or ended (the booking code's messages)
    "reason.person_weekly_limit": "this person already has {count} visits that week",
    "reason.visitor_weekly_limit": "you already have {count} visits that week",
    "reason.booking_window": (
        "visits can be booked from {min_minutes} minutes to {max_days} days ahead"
    ),
    "reason.this person cannot have visits at the moment": (
        "this person cannot have visits at the moment"
    ),
    "reason.visiting is suspended for this person at that time": (
        "visiting is suspended for this person at that time"
    ),
    "reason.visits are suspended at that time": "visits are suspended at that time",
    "reason.this person has another visit at that time": (
        "this person has another visit at that time"
    ),
    "reason.you have another visit at that time": "you have another visit at that time",
    "reason.that slot has just been taken; pick another one": (
        "that slot has just been taken; pick another one"
    ),
    "reason.you may not visit at this facility at that time": (
        "you may not visit at this facility at that time"
    ),
    "reason.that time is not a visit slot; pick one from the availability list": (
        "that time is not a visit slot; pick one from the availability list"
    ),
    "reason.the clocks change at that time that day": "the clocks change at that time that day",
    "reason.confirm your e-mail address and have your ID checked before booking": (
        "confirm your e-mail address and have your ID checked before booking"
    ),
    "reason.you are not on this person's approved visitor list": (
        "you are not on this person's approved visitor list"
    ),
    "reason.the person is no longer here": "the person is no longer here",
}
