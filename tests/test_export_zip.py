"""A folder-shaped export (hf-dataset) is zipped, checksummed and sized without following
symbolic links: a link planted in the folder never ships a file from elsewhere."""
import io
import os
import zipfile

from feedback.exports.files import checksum, directory_zip_chunks, size_bytes


def folder_with_links(tmp_path):
    export = tmp_path / "export"
    (export / "train").mkdir(parents=True)
    (export / "train" / "data.arrow").write_bytes(b"arrow bytes")
    (export / "dataset_dict.json").write_text('{"splits": ["train"]}')
    outside = tmp_path / "outside"
    (outside / "keys").mkdir(parents=True)
    (outside / "secret.txt").write_text("do not ship")
    (outside / "keys" / "id_rsa").write_text("private key")
    os.symlink(outside / "secret.txt", export / "train" / "secret.txt")
    os.symlink(outside / "keys", export / "keys")
    return export


def test_the_zip_leaves_out_symbolic_links(tmp_path):
    export = folder_with_links(tmp_path)
    archive = zipfile.ZipFile(io.BytesIO(b"".join(directory_zip_chunks(export, root_name="ds"))))
    assert sorted(archive.namelist()) == ["ds/dataset_dict.json", "ds/train/data.arrow"]
    assert archive.read("ds/train/data.arrow") == b"arrow bytes"


def test_checksum_and_size_ignore_symbolic_links(tmp_path):
    export = folder_with_links(tmp_path)
    with_links = checksum(export), size_bytes(export)
    os.unlink(export / "train" / "secret.txt")
    os.unlink(export / "keys")
    assert (checksum(export), size_bytes(export)) == with_links
    assert with_links[1] == len(b"arrow bytes") + len('{"splits": ["train"]}')
