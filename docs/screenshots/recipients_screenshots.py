"""Regenerate the All Recipients screenshots (recipients_*.png, recipient_*.png) from the console.

Run under Xvfb (a real X server, so fonts, styles and popups are what a person sees):

    xvfb-run -s "-screen 0 1280x800x24" .venv/bin/python docs/screenshots/recipients_screenshots.py

It builds a sample organisation in a temporary data directory (nothing in your own data is
touched), opens the console on it without the services, and saves one PNG per view, sheet tab,
wizard page and dialog next to this script.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from PySide6.QtCore import QItemSelectionModel, QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication, QMenu  # noqa: E402

from app import organization, policies, rus  # noqa: E402
from app.directory import recipients  # noqa: E402
from app.store import Store  # noqa: E402

sys.path.insert(0, str(HERE))
from make_screenshots import save, save_screen_area, settle  # noqa: E402

PEOPLE = [
    ("jsmith", "John", "Q", "Smith", "Sales", "Contoso"),
    ("mclark", "Mark", "M", "Clark", "Sales", "Contoso"),
    ("agarcia", "Ana", "", "García", "Sales", "Fabrikam"),
    ("lmueller", "Lena", "", "Müller", "Support", "Contoso"),
    ("tnguyen", "Thanh", "", "Nguyen", "Support", "Contoso"),
    ("bwhite", "Bob", "", "White", "Finance", "Contoso"),
    ("cjones", "Carol", "A", "Jones", "Finance", "Fabrikam"),
    ("dpatel", "Dev", "", "Patel", "IT", "Contoso"),
    ("fdubois", "François", "", "Dubois", "Sales", "Contoso"),
    ("kschmidt", "Karin", "", "Schmidt", "IT", "Contoso"),
    ("rsato", "Rei", "", "Sato", "Support", "Fabrikam"),
    ("ewong", "Emily", "", "Wong", "Marketing", "Contoso"),
]


def sample_store(data_dir: Path) -> Store:
    store = Store.open(data_dir)
    organization.initialize(store, "Example Corp", "example.com")
    policies.create_policy(store, "Sales", "(department=Sales)", "Sales staff get both domains")
    policies.add_rule(store, "Sales", "%g.%s@sales.example.com")
    policies.add_rule(store, "Sales", "@example.com")
    policies.create_policy(store, "Fabrikam staff", "(company=Fabrikam)")
    policies.add_rule(store, "Fabrikam staff", "%1g%s@fabrikam.example")
    for alias, given, initials, surname, department, company in PEOPLE:
        recipients.create_recipient(
            store,
            alias,
            attributes={
                "givenName": given,
                "initials": initials,
                "sn": surname,
                "department": department,
                "company": company,
                "title": "Account Manager" if department == "Sales" else "",
                "l": "Berlin",
                "extensionAttribute1": "CC-4711" if department == "Sales" else "",
            },
            password="secret" if alias == "jsmith" else None,
        )
    recipients.create_recipient(
        store,
        "partner-desk",
        "contact",
        attributes={"displayName": "Partner Help Desk", "company": "Tailspin"},
        target="help@tailspin.example",
    )
    recipients.create_recipient(
        store,
        "sales-team",
        "group",
        attributes={"displayName": "Sales Team", "department": "Sales"},
        members=["jsmith", "mclark", "agarcia", "fdubois"],
    )
    recipients.create_recipient(
        store, "all-staff", "group", attributes={"displayName": "All Staff"}, members=["sales-team"]
    )
    rus.run(store, "rebuild")
    recipients.add_address(store, "jsmith", "john@example.com")
    recipients.edit_recipient(store, "bwhite", auto_update=False)
    recipients.create_recipient(
        store, "newhire", attributes={"givenName": "Nina", "sn": "Neu", "department": "IT"}
    )  # not yet stamped
    return store


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    app = QApplication(sys.argv[:1])
    app.setApplicationName("Postroom")
    from ui import icons, messages
    from ui.app import close_window, open_window
    from ui.dialogs.address import AddressTypeDialog
    from ui.dialogs.new_recipient import NewRecipientWizard
    from ui.dialogs.recipient import RecipientDialog
    from ui.dialogs.recipient_address import ProxyAddressDialog
    from ui.dialogs.recipient_picker import SelectRecipientsDialog
    from ui.views.recipients import AllRecipientsView

    app.setWindowIcon(icons.app_icon())
    messages.ask = lambda *args, **kwargs: False  # type: ignore[assignment]

    workdir = Path(tempfile.mkdtemp(prefix="postroom-shots-"))
    store = sample_store(workdir / "data")
    settings = QSettings(str(workdir / "console.ini"), QSettings.Format.IniFormat)
    window = open_window(store, settings, services=False)
    window.resize(1180, 640)
    window.move(20, 20)
    window.splitter.setSizes([260, 920])
    window.show()
    settle(800)
    try:
        window.select_node("recipients/all")
        view = window.current
        assert isinstance(view, AllRecipientsView)
        settle(800)
        index = window.proxy.index(7, 0)
        window.result_list.selectionModel().setCurrentIndex(
            index,
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )
        save(window, "recipients_all")

        view.filter_edit.setText("sales")
        view._apply_filter()
        settle(800)
        save(window, "recipients_filter")
        view.filter_edit.clear()
        view._apply_filter()
        settle(800)

        # Right-click the node: New > User, Contact, Group.
        tree_index = window.tree_model.index_of(window.node_of("recipients/all"))
        window.tree.setCurrentIndex(tree_index)
        window._tree_context_menu(window.tree.visualRect(tree_index).center())
        settle()
        menu = QApplication.activePopupWidget()
        assert isinstance(menu, QMenu)
        new = next(a for a in menu.actions() if a.menu() is not None)
        menu.setActiveAction(new)
        settle(400)
        popups = [
            w for w in QApplication.topLevelWidgets() if isinstance(w, QMenu) and w.isVisible()
        ]
        save_screen_area(window, popups, "recipients_context_menu")
        for popup in popups:
            popup.close()

        # New > User, page by page.
        wizard = NewRecipientWizard(window, store, "user")
        wizard.show()
        wizard.names.given.setText("Anna")
        wizard.names.initials.setText("K")
        wizard.names.surname.setText("Lee")
        wizard.names._names_edited()
        save(wizard, "recipient_new_user_names")
        wizard.next()
        wizard.password.password.setText("correct horse")
        wizard.password.confirm.setText("correct horse")
        save(wizard, "recipient_new_user_password")
        wizard.next()
        save(wizard, "recipient_new_user_summary")
        wizard.close()

        contact = NewRecipientWizard(window, store, "contact")
        contact.show()
        contact.names.given.setText("Ann")
        contact.names.surname.setText("Partner")
        contact.names._names_edited()
        contact.next()
        contact.target.target.setText("ann@partner")
        save(contact, "recipient_new_contact_target")
        contact.close()

        group = NewRecipientWizard(window, store, "group")
        group.show()
        group.names.display.setText("Support Escalations")
        group.names._display_edited("Support Escalations")
        save(group, "recipient_new_group")
        group.close()

        # The sheet of a user, each tab.
        sheet = RecipientDialog(window, store, recipients.get_recipient(store, "jsmith"))
        sheet.show()
        save(sheet, "recipient_general")
        sheet.tabs.setCurrentWidget(sheet.addresses)
        sheet.addresses.select_row(1)
        save(sheet, "recipient_email_addresses")
        sheet.tabs.setCurrentWidget(sheet.member_of)
        save(sheet, "recipient_member_of")

        chooser = AddressTypeDialog(sheet)
        chooser.show()
        chooser.close()
        address = ProxyAddressDialog(
            sheet, store, "SMTP", None, sheet.addresses.addresses.addresses(), "jsmith"
        )
        address.address.setText("john.smith@example.com")
        address.show()
        save(address, "recipient_address")
        address.address.setText("john@elsewhere.example")
        save(address, "recipient_address_warning")
        address.address.setText("john smith@example.com")
        save(address, "recipient_address_invalid")
        address.close()
        sheet.close()

        manual = RecipientDialog(window, store, recipients.get_recipient(store, "bwhite"))
        manual.show()
        manual.tabs.setCurrentWidget(manual.addresses)
        save(manual, "recipient_email_addresses_manual")
        manual.close()

        team = RecipientDialog(window, store, recipients.get_recipient(store, "sales-team"))
        team.show()
        save(team, "recipient_group_general")
        assert team.members is not None
        team.tabs.setCurrentWidget(team.members)
        save(team, "recipient_group_members")
        picker = SelectRecipientsDialog(
            team, store, "Select Members", ("user", "contact", "group"), ()
        )
        picker.show()
        picker.search.setText("ar")
        picker.run_search()
        settle(600)
        picker.view.setCurrentIndex(picker.results.index(0, 0))
        save(picker, "recipient_select_members")
        picker.reject()
        team.close()

        desk = RecipientDialog(window, store, recipients.get_recipient(store, "partner-desk"))
        desk.show()
        save(desk, "recipient_contact_general")
        desk.close()
    finally:
        close_window(window)
        store.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
