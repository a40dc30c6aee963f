"""The intake questionnaire, version 2026-11.2.

A phone-sized subset of docs questionnaire-fields.md (Istanbul Protocol based).
Consent is asked separately, before this. Prompts speak to the reporter and stay
neutral about whether they are the victim or a relative ("the person who was
detained"). Every question can be skipped: only consent, asked before, is ever
required. Changing wording, codes or order means a new `version`: answers are
stored with the version they were given under.
"""

from __future__ import annotations

from typing import Final

from bot.questionnaire.model import (
    YES,
    Condition,
    Option,
    Question,
    Questionnaire,
    QuestionType,
    Section,
)
from bot.text import N_

_SKIP_HINT: Final = N_("If you prefer not to answer, press Skip.")
_CHOOSE_ALL: Final = N_("Choose all that apply, then press Done.")

QUESTIONNAIRE_V1: Final = Questionnaire(
    version="2026-11.2",
    questions=(
        # --- reporter -------------------------------------------------------
        Question(
            id="reporter",
            type=QuestionType.SINGLE,
            section=Section.REPORTER,
            prompt=N_("Who is sending this report?"),
            options=(
                Option("victim", N_("I am the person it happened to")),
                Option("relative", N_("A relative")),
                Option("witness", N_("A witness")),
                Option("other", N_("Someone else")),
            ),
            allow_dont_know=False,
        ),
        Question(
            id="relation",
            type=QuestionType.SINGLE,
            section=Section.REPORTER,
            prompt=N_("How are you related to the person who was detained?"),
            options=(
                Option("parent", N_("Mother or father")),
                Option("spouse", N_("Wife or husband")),
                Option("sibling", N_("Sister or brother")),
                Option("child", N_("Daughter or son")),
                Option("other", N_("Other relative")),
            ),
            conditions=(Condition("reporter", frozenset({"relative"})),),
            allow_dont_know=False,
        ),
        Question(
            id="victim_agrees",
            type=QuestionType.SINGLE,
            section=Section.REPORTER,
            prompt=N_("Does the person who was detained know about this report and agree to it?"),
            hint=N_("You can send the report in any case."),
            options=(
                Option("yes", N_("Yes, they agree")),
                Option("no", N_("No")),
                Option("cannot_ask", N_("Cannot ask: they are detained")),
            ),
            conditions=(Condition("reporter", frozenset({"relative", "witness", "other"})),),
        ),
        # --- victim ---------------------------------------------------------
        Question(
            id="victim_name",
            type=QuestionType.TEXT,
            section=Section.VICTIM,
            prompt=N_(
                "What is the name of the person who was detained? "
                "A nickname or a made-up name is fine too."
            ),
            hint=_SKIP_HINT,
            max_length=200,
            allow_dont_know=False,
        ),
        Question(
            id="sex",
            type=QuestionType.SINGLE,
            section=Section.VICTIM,
            prompt=N_("Is the person a man or a woman?"),
            options=(
                Option("male", N_("Man or boy")),
                Option("female", N_("Woman or girl")),
            ),
            allow_dont_know=False,
        ),
        Question(
            id="age_group",
            type=QuestionType.SINGLE,
            section=Section.VICTIM,
            prompt=N_("How old is the person?"),
            options=(
                Option("under_18", N_("Under 18")),
                Option("18_30", N_("18 to 30")),
                Option("31_50", N_("31 to 50")),
                Option("over_50", N_("Over 50")),
            ),
            urgent_if=frozenset({"under_18"}),
        ),
        Question(
            id="situation",
            type=QuestionType.SINGLE,
            section=Section.VICTIM,
            prompt=N_("Where is the person now?"),
            options=(
                Option("detained", N_("Still detained")),
                Option("released", N_("Released")),
                Option("hospital", N_("In hospital")),
                Option("dead", N_("Has died")),
                Option("unknown", N_("We do not know")),
            ),
            urgent_if=frozenset({"detained"}),
            # "We do not know" is itself an answer here: it may mean a disappearance.
            allow_dont_know=False,
        ),
        Question(
            id="held_where",
            type=QuestionType.TEXT,
            section=Section.VICTIM,
            prompt=N_("Where is the person held now? Write the name or address of the place."),
            hint=_SKIP_HINT,
            max_length=200,
            conditions=(Condition("situation", frozenset({"detained"})),),
        ),
        # --- event ----------------------------------------------------------
        Question(
            id="event_date",
            type=QuestionType.DATE,
            section=Section.EVENT,
            prompt=N_(
                "When did it happen? Write the date, for example 14.03.2025. "
                "If you remember only the month or the year, write 03.2025 or 2025."
            ),
            hint=N_("If it went on for several days, write the first day."),
        ),
        Question(
            id="region",
            type=QuestionType.SINGLE,
            section=Section.EVENT,
            prompt=N_("In which region did it happen?"),
            # Many people do not know the category "districts of republican
            # subordination" but know their district: name some of them.
            hint=N_(
                "Districts of Republican Subordination are, for example, Vahdat, Hisor, "
                "Tursunzoda, Rudaki, Varzob, Fayzobod, Rasht and Roghun."
            ),
            options=(
                Option("dushanbe", N_("Dushanbe")),
                Option("sughd", N_("Sughd")),
                Option("khatlon", N_("Khatlon")),
                Option("gbao", N_("GBAO")),
                Option("rrp", N_("Districts of Republican Subordination")),
                Option("abroad", N_("Outside Tajikistan")),
            ),
        ),
        Question(
            id="place_town",
            type=QuestionType.TEXT,
            section=Section.EVENT,
            prompt=N_("In which district, town or village?"),
            hint=_SKIP_HINT,
            max_length=100,
        ),
        Question(
            id="place_type",
            type=QuestionType.SINGLE,
            section=Section.EVENT,
            prompt=N_("What kind of place was it?"),
            options=(
                Option("police", N_("Police station")),
                Option("ivs", N_("Temporary detention (IVS)")),
                Option("sizo", N_("Pre-trial detention (SIZO)")),
                Option("colony", N_("Penal colony")),
                Option("security", N_("Security service (GKNB) building")),
                Option("arrest", N_("During arrest, in the street or in a car")),
                Option("home", N_("At home")),
                Option("unknown", N_("A place we do not know")),
                Option("other", N_("Other place")),
            ),
            allow_dont_know=False,
        ),
        # --- perpetrators ---------------------------------------------------
        Question(
            id="agency",
            type=QuestionType.MULTI,
            section=Section.PERPETRATORS,
            # Multi: officers of several services often act together (e.g. police
            # arrest, GKNB interrogation); statistics count each service.
            prompt=N_("Which service were the officers from?"),
            hint=_CHOOSE_ALL,
            options=(
                Option("police", N_("Police (Ministry of Internal Affairs)")),
                Option("gknb", N_("GKNB (National Security)")),
                Option("drugs", N_("Drug Control Agency")),
                Option("anticorr", N_("Anti-Corruption Agency")),
                Option("prosecutor", N_("Prosecutor's Office")),
                Option("prison", N_("Prison service")),
                Option("military", N_("Military")),
                Option("other", N_("Other")),
            ),
        ),
        Question(
            id="officers_count",
            type=QuestionType.NUMBER,
            section=Section.PERPETRATORS,
            prompt=N_("How many officers took part? Write a number."),
            min_value=1,
            max_value=50,
        ),
        Question(
            id="officers_info",
            type=QuestionType.TEXT,
            section=Section.PERPETRATORS,
            prompt=N_(
                "What do you know about the officers? Names, ranks, nicknames, how they looked."
            ),
            hint=_SKIP_HINT,
            max_length=500,
        ),
        # --- acts -----------------------------------------------------------
        Question(
            id="acts",
            type=QuestionType.MULTI,
            section=Section.ACTS,
            prompt=N_("What was done to the person?"),
            hint=_CHOOSE_ALL,
            options=(
                Option("beating", N_("Beating")),
                Option("electric", N_("Electric shocks")),
                Option("suffocation", N_("Suffocation (bag, water)")),
                Option("positions", N_("Forced positions or hanging")),
                Option("sexual", N_("Sexual violence or threats of it")),
                Option("naked", N_("Forced nakedness or humiliation")),
                Option("threats", N_("Threats against them or the family")),
                Option("deprivation", N_("No sleep, food or water")),
                Option("no_medical", N_("Medical help refused")),
                Option("cold_heat", N_("Extreme cold or heat")),
                Option("isolation", N_("Kept alone, cut off")),
                Option("other", N_("Something else")),
            ),
        ),
        Question(
            id="account",
            type=QuestionType.TEXT,
            section=Section.ACTS,
            prompt=N_("In your own words, what happened? Write as much or as little as you want."),
            hint=N_(
                "Who, what, when and where help the lawyer most. "
                "If you prefer not to answer, press Skip."
            ),
            max_length=3000,
            allow_dont_know=False,
            # A voice message is kept as evidence; the answer refers to it.
            accepts_voice=True,
        ),
        Question(
            id="purpose",
            type=QuestionType.MULTI,
            section=Section.ACTS,
            prompt=N_("Why do you think they did it?"),
            hint=_CHOOSE_ALL,
            options=(
                Option("confession", N_("To get a confession or information")),
                Option("money", N_("To get money")),
                Option("punishment", N_("To punish")),
                Option("intimidation", N_("To frighten")),
                Option("pressure_other", N_("To put pressure on someone else")),
            ),
        ),
        Question(
            id="signed_statement",
            type=QuestionType.YES_NO,
            section=Section.ACTS,
            prompt=N_("Was the person made to sign a statement or confession under pressure?"),
        ),
        # --- consequences ---------------------------------------------------
        Question(
            id="injuries",
            type=QuestionType.SINGLE,
            section=Section.CONSEQUENCES,
            prompt=N_("Does the person have injuries now?"),
            options=(
                Option("urgent_help", N_("Yes, needs urgent medical help")),
                Option("injured", N_("Yes, but not urgent")),
                Option("none_visible", N_("No visible injuries")),
            ),
            urgent_if=frozenset({"urgent_help"}),
        ),
        Question(
            id="medical_exam",
            type=QuestionType.MULTI,
            section=Section.CONSEQUENCES,
            prompt=N_("Has a doctor examined the person since then?"),
            hint=_CHOOSE_ALL,
            options=(
                Option("none", N_("No examination"), exclusive=True),
                Option("detention_doc", N_("The detention doctor")),
                Option("forensic", N_("A forensic expert")),
                Option("independent", N_("An independent doctor")),
                Option("refused", N_("We asked, but it was refused")),
            ),
        ),
        Question(
            id="evidence",
            type=QuestionType.MULTI,
            section=Section.CONSEQUENCES,
            prompt=N_("What proof exists?"),
            hint=N_("Choose all that apply, then press Done. Keep any proof in a safe place."),
            options=(
                Option("photos", N_("Photos of injuries")),
                Option("medical", N_("Medical papers")),
                Option("detention_rec", N_("Detention records")),
                Option("court", N_("Court papers")),
                Option("witnesses", N_("Witnesses")),
                Option("none", N_("Nothing yet"), exclusive=True),
            ),
        ),
        Question(
            id="evidence_files",
            type=QuestionType.FILES,
            section=Section.CONSEQUENCES,
            prompt=N_(
                "If you have photos, documents, voice messages or audio recordings, you can "
                "send them here, one or several. Then press Done."
            ),
            hint=N_(
                "A photo sent the ordinary way loses its location and time data. A photo "
                'sent "as a file" keeps them: this can help the lawyer, but it also shows '
                "where and when it was taken. If you have no files, press Skip."
            ),
            allow_dont_know=False,
        ),
        # --- legal ----------------------------------------------------------
        Question(
            id="lawyer",
            type=QuestionType.SINGLE,
            section=Section.LEGAL,
            prompt=N_("Does the person have a lawyer?"),
            options=(
                Option("own", N_("Yes, one we chose")),
                Option("state", N_("Yes, appointed by the state")),
                Option("none", N_("No lawyer")),
                Option("denied", N_("The lawyer was not let in")),
            ),
        ),
        Question(
            id="complaints",
            type=QuestionType.MULTI,
            section=Section.LEGAL,
            prompt=N_("Has anyone already complained about this?"),
            hint=_CHOOSE_ALL,
            options=(
                Option("prosecutor", N_("To the prosecutor")),
                Option("ombudsman", N_("To the Ombudsman")),
                Option("court", N_("To a court")),
                Option("other", N_("Somewhere else")),
                Option("none", N_("No complaint yet"), exclusive=True),
            ),
        ),
        Question(
            id="threats_now",
            type=QuestionType.YES_NO,
            section=Section.LEGAL,
            prompt=N_("Is anyone threatening or pressuring you or the person now?"),
            hint=N_("For example, to withdraw a complaint or to refuse a lawyer."),
            urgent_if=frozenset({YES}),
        ),
        # --- contact --------------------------------------------------------
        Question(
            id="contact_how",
            type=QuestionType.SINGLE,
            section=Section.CONTACT,
            prompt=N_("How can a lawyer contact you safely?"),
            options=(
                Option("chat", N_("Here, in this chat")),
                Option("trusted", N_("Through a person I trust")),
                Option("none", N_("Do not contact me")),
            ),
            allow_dont_know=False,
        ),
        Question(
            id="contact_time",
            type=QuestionType.SINGLE,
            section=Section.CONTACT,
            prompt=N_("When is it safe to contact you?"),
            options=(
                Option("morning", N_("Morning")),
                Option("afternoon", N_("Afternoon")),
                Option("evening", N_("Evening")),
                Option("any", N_("Any time")),
            ),
            conditions=(Condition("contact_how", frozenset({"chat", "trusted"})),),
            allow_dont_know=False,
        ),
        Question(
            id="write_first",
            type=QuestionType.YES_NO,
            section=Section.CONTACT,
            prompt=N_(
                "May a lawyer write to you first? If not, we will only answer when you write to us."
            ),
            conditions=(Condition("contact_how", frozenset({"chat"})),),
            allow_dont_know=False,
        ),
        Question(
            id="trusted_contact",
            type=QuestionType.TEXT,
            section=Section.CONTACT,
            prompt=N_(
                "How can we reach the person you trust? "
                "Write their name and phone number or Telegram username."
            ),
            hint=N_("Please ask them first whether they agree."),
            max_length=200,
            conditions=(Condition("contact_how", frozenset({"trusted"})),),
            allow_dont_know=False,
        ),
    ),
)
