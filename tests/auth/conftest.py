"""Every auth test hashes passwords cheaply."""

from tests.auth.fixtures import cheap_passwords as cheap_passwords
