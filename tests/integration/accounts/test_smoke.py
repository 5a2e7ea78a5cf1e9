import httpx


async def test_health_is_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_register_then_me(client: httpx.AsyncClient) -> None:
    r = await client.post("/auth/register", json={"email": "A@B.io", "password": "password1"})
    assert r.status_code == 201, r.text
    login = await client.post("/auth/login", json={"email": "a@b.io", "password": "password1"})
    assert login.status_code == 200
    me = await client.get("/auth/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"})
    assert me.json()["email"] == "a@b.io"
