"""One configuration per domain, through the CLI: two configurations for one domain (in any case) are
refused naming both files, and a new name for a managed configuration's domain is planned and applied
as a rename of that configuration (no second configuration, no delete), like Terraform's ``moved``."""

from __future__ import annotations

from support.security import Sandbox, configuration


def test_two_configurations_for_one_domain_are_refused_naming_both_files(sandbox: Sandbox) -> None:
    sandbox.write("configs/a.yaml", configuration("alpha", domain="contoso.com"))
    sandbox.write("configs/b.yaml", configuration("beta", domain="Contoso.COM"))
    sandbox.commit("two configurations for one domain")
    for args in (["validate", "configs"], ["plan", "configs"], ["apply", "configs", "--auto-approve"]):
        ran = sandbox.run(*args)
        assert ran.code == 1, ran.text
        assert "a.yaml" in ran.err and "b.yaml" in ran.err and "domain" in ran.err, ran.err
    assert sandbox.configurations() == {}


def test_a_new_name_for_the_same_domain_renames_the_configuration(sandbox: Sandbox) -> None:
    sandbox.write("configs/a.yaml", configuration("alpha", domain="contoso.com"))
    sandbox.commit("alpha")
    assert sandbox.run("apply", "configs", "--auto-approve").code == 0
    kept = sandbox.configurations()["alpha"]["id"]
    (sandbox.repo / "configs" / "a.yaml").unlink()
    sandbox.write("configs/contoso.yaml", configuration("contoso", domain="contoso.com"))
    sandbox.commit("alpha is now called contoso")
    ran = sandbox.run("plan", "configs", "--out", "plan.json")
    assert ran.code == 0, ran.text
    assert "metadata.name" in ran.out and "alpha" in ran.out and "contoso" in ran.out, ran.out
    assert "will be created" not in ran.out and "will be deleted" not in ran.out, ran.out
    ran = sandbox.run("apply", "plan.json")
    assert ran.code == 0, ran.text
    after = sandbox.configurations()
    assert list(after) == ["contoso"] and after["contoso"]["id"] == kept
    assert sandbox.run("plan", "configs", "--detailed-exitcode").code == 0


def test_a_rename_with_other_changes_is_one_update_and_keeps_deletion_protection(sandbox: Sandbox) -> None:
    sandbox.write(
        "configs/a.yaml", configuration("alpha", domain="contoso.com", extra="  deletionProtection: true\n")
    )
    sandbox.commit("alpha")
    assert sandbox.run("apply", "configs", "--auto-approve").code == 0
    text = configuration(
        "contoso", domain="contoso.com", extra="  deletionProtection: true\n  enabled: false\n"
    )
    sandbox.write("configs/a.yaml", text.replace("ops@contoso.com", "team@contoso.com"))
    sandbox.commit("renamed, paused and a new e-mail")
    ran = sandbox.run("apply", "configs", "--auto-approve")
    assert ran.code == 0, ran.text
    after = sandbox.configurations()
    assert list(after) == ["contoso"] and after["contoso"]["protected"]
    assert sandbox.run("plan", "configs", "--detailed-exitcode").code == 0
