"""placeholder"""
def main() -> None:
    print("openpista 0.1.0")
