"""The Quart app: container, extensions and blueprints. Nothing else."""

from __future__ import annotations

from dishka import Provider, make_async_container
from quart import Quart
from quart_dishka import QuartDishka
from quart_schema import Info, QuartSchema

from services.class_management_service.api.asyncapi_routes import asyncapi_bp
from services.class_management_service.api.authentication import CallerAuthentication
from services.class_management_service.api.body_limit import DrainRefusedBodies
from services.class_management_service.api.class_routes import class_bp
from services.class_management_service.api.health_routes import DELIVERY_REQUIRED, health_bp
from services.class_management_service.api.openapi import ServiceOpenAPIProvider
from services.class_management_service.api.problems import register_problem_handlers
from services.class_management_service.api.request_context import (
    ServiceApp,
    register_request_hooks,
)
from services.class_management_service.api.responses import install_response_encoding
from services.class_management_service.api.student_routes import student_bp
from services.class_management_service.config import AuthMode, Settings
from services.class_management_service.di import (
    InfrastructureProvider,
    RepositoryProvider,
    ServiceProvider,
)
from services.class_management_service.implementations.jwt_token_verifier_impl import (
    JwtTokenVerifierImpl,
)
from services.class_management_service.startup_setup import register_lifecycle


def create_app(settings: Settings | None = None, *overrides: Provider, api: bool = True) -> Quart:
    """Build the app; ``overrides`` replace providers of the same types (tests use this).

    ``api=False`` leaves out the /v1 class and student API: only health and metrics are
    served (the ``relay`` command)."""
    settings = settings or Settings()
    if api:
        settings.require_token_keys()
    app = ServiceApp(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.MAX_BODY_BYTES
    app.config["BODY_TIMEOUT"] = settings.REQUEST_TIMEOUT_SECONDS
    app.config["REQUEST_TIMEOUT_SECONDS"] = settings.REQUEST_TIMEOUT_SECONDS
    app.config[DELIVERY_REQUIRED] = not api  # the relay process exists to publish
    app.asgi_app = DrainRefusedBodies(app.asgi_app, settings.REQUEST_TIMEOUT_SECONDS)  # type: ignore[method-assign]
    app.config["AUTH_MODE"] = settings.AUTH_MODE  # the OpenAPI document describes it
    QuartSchema(
        app,
        info=Info(title="HuleEdu Class Management Service", version="1.0.0"),
        redoc_ui_path=None,
        scalar_ui_path=None,
        swagger_ui_path="/docs",
        openapi_provider_class=ServiceOpenAPIProvider,
    )
    container = make_async_container(
        InfrastructureProvider(),
        RepositoryProvider(),
        ServiceProvider(),
        *overrides,
        context={Settings: settings},
    )
    install_response_encoding(app)  # after QuartSchema: wraps its make_response
    QuartDishka(app=app, container=container)
    verifier = JwtTokenVerifierImpl(settings) if settings.AUTH_MODE is AuthMode.JWT else None
    register_request_hooks(app, CallerAuthentication(settings.AUTH_MODE, verifier))
    register_problem_handlers(app)
    register_lifecycle(app, container, settings)
    app.register_blueprint(health_bp)
    app.register_blueprint(asyncapi_bp)
    if api:
        app.register_blueprint(class_bp)
        app.register_blueprint(student_bp)
    return app
