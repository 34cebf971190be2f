"""Unbound extension instances, bound to an app in `create_app`."""

from flask_mail import Mail
from flask_migrate import Migrate
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base of every table."""


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
mail = Mail()
socketio = SocketIO()
