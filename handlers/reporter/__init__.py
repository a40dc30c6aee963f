"""Everything a reporter (victim, relative, witness) does with the bot."""

from aiogram import Router

from handlers.reporter import (
    commands,
    evidence,
    forget,
    news,
    questions,
    replies,
    review,
    start,
)


def build_reporter_router() -> Router:
    router = Router(name="reporter")
    # Commands first: "/status" typed in the middle of a question is a command,
    # not an answer. News being written takes /cancel and what is typed or sent
    # before the questionnaire does.
    router.include_routers(
        start.build_router(),
        news.build_router(),
        commands.build_router(),
        forget.build_router(),
        replies.build_router(),
        review.build_router(),
        evidence.build_router(),
        questions.build_router(),
    )
    return router
